printf 'cat\ndog\nbird\n' > labels.txt
torchzoo export my_net.pt2 --task classification --labels labels.txt --name my-net-pt2
torchzoo verify my-net-pt2
python -c "import numpy as np; np.save('x.npy', np.random.default_rng(0).standard_normal((2, 8), dtype=np.float32))"
torchzoo predict my-net-pt2 x.npy
