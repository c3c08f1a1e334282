torchzoo train names --profile quick   # seconds; without --profile quick: the tutorial's full recipe
torchzoo export names --format all     # state_dict, TorchScript, pt2, ONNX, int8/fp16: each checked against eager
torchzoo verify names                  # re-hash every file and re-run every check from the files alone
torchzoo predict names Rossi           # onnxruntime only, torch is never imported: the language scores
PORT=${PORT:-8000}
torchzoo serve names --port $PORT &    # Open Inference Protocol over HTTP (--ray: Ray Serve replicas)
curl -s --retry 30 --retry-connrefused localhost:$PORT/v1/models/names:predict -d '{"instances": ["Rossi"]}'
kill $! && wait                        # SIGTERM: every request in flight is answered, then it exits
torchzoo embed names --out names-bundle   # model.onnx, manifest.json and the JS client, for Node or a web page
