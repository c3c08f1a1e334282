docker run --rm -p 8000:8000 -p 8001:8001 -v "$PWD/triton-repo:/models" nvcr.io/nvidia/tritonserver:24.10-py3 \
  tritonserver --model-repository=/models
