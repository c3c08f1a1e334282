# a head and two worker hosts on one machine (as root); the workers do not see $ARTIFACTS
ARTIFACTS=${TORCHZOO_ARTIFACTS:-$PWD/artifacts}
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=$(openssl rand -hex 32) RAY_USAGE_STATS_ENABLED=0
ip link add tzbr type bridge && ip addr add 10.213.7.254/24 dev tzbr && ip link set tzbr up
i=1
for host in head w1 w2; do
  ip netns add $host
  ip link add tz${i}h type veth peer name tz${i}n
  ip link set tz${i}n netns $host && ip link set tz${i}h master tzbr up
  ip -n $host link set tz${i}n name eth0 && ip -n $host addr add 10.213.7.$i/24 dev eth0
  ip -n $host link set eth0 up && ip -n $host link set lo up
  hide=/tmp/ray; [ $host = head ] || hide="$hide $ARTIFACTS"
  ip netns exec $host unshare --mount --propagation private sh -c \
    "for d in $hide /dev/shm; do mkdir -p \$d && mount -t tmpfs tmpfs \$d; done; exec sleep infinity" &
  eval "anchor_$host=$!"
  i=$((i + 1))
done
sleep 1
on() { host=$1; shift; eval "pid=\$anchor_$host"; nsenter -t "$pid" -n -m -- "$@"; }
on head ray start --head --node-ip-address=10.213.7.1 --port=6379 --num-cpus=0 --include-dashboard=false
on w1 ray start --address=10.213.7.1:6379 --node-ip-address=10.213.7.2 --num-cpus=2
on w2 ray start --address=10.213.7.1:6379 --node-ip-address=10.213.7.3 --num-cpus=2
# the command on the head; from this machine: curl http://10.213.7.1:8000/v2/health/ready
on head torchzoo serve mnist-mlp --ray --replicas 2 --address 10.213.7.1:6379 --host 0.0.0.0 --port 8000 \
  --artifacts-dir "$ARTIFACTS"
