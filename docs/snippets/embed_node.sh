torchzoo embed names --out names-bundle     # model.onnx, manifest.json, torchzoo-client.mjs, package.json, README.md, index.html
node examples/node/predict.mjs names Rossi  # JSON like `torchzoo predict --json`; also: mnist-mlp digit.png (a 28x28 PNG)
