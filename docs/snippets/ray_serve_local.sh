PORT=${PORT:-8000}
torchzoo serve names mnist-mlp --ray --replicas 2 --port $PORT &   # a local Ray instance, 2 replicas
curl -sf --retry 60 --retry-all-errors --retry-delay 1 localhost:$PORT/v2/health/ready   # Serve's proxy is up
curl -si localhost:$PORT/v2/models/mnist-mlp   # headers x-torchzoo-node, x-torchzoo-node-ip, x-torchzoo-replica
curl -s -XPOST localhost:$PORT/v1/models/names:predict -d '{"instances": ["Rossi"]}'   # the same app, protocol, errors
kill $! && wait                                # SIGTERM deletes the app and stops the local Ray instance
