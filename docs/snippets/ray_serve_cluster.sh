torchzoo serve all --ray --autoscale 1:4                      # Serve adds and removes replicas with the load

# two machines: start Ray on each, then deploy from the head
ray start --head --port 6379                                  # on the head node
ray start --address HEAD_IP:6379                              # on the second node
torchzoo serve all --ray --replicas 2 --address auto --host 0.0.0.0 --token "$TOKEN"   # on the head node

# join a running cluster (e.g. from a machine of it that is not the head)
torchzoo serve names --ray --replicas 4 --address HEAD_IP:6379 --proxy-location every-node
