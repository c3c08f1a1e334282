PORT=${PORT:-8000}
torchzoo serve names mnist-mlp wine --port $PORT &    # pip install -e '.[serve,cpu]' first
curl -s --retry 30 --retry-connrefused localhost:$PORT/v2/health/ready   # answers once every model is loaded
curl -s localhost:$PORT/v2/models/names                # metadata: -1 marks dynamic axes
curl -s -XPOST localhost:$PORT/v1/models/names:predict -d '{"instances": ["Rossi", "Nguyen"]}'
curl -s -XPOST localhost:$PORT/v2/models/wine/infer \
  -d '{"id": "1", "inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": [0,0,0,0,0,0,0,0,0,0,0,0,0]}]}'
kill $! && wait                                        # SIGTERM: every request in flight is answered, then it exits
