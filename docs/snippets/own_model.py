import torch
from torch import nn

import torchzoo


class MyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # logits


torch.manual_seed(0)
model = MyNet()  # your trained module (train mode or eval: it is exported and checked in eval mode)
x = torch.randn(16, 8)  # a few real inputs
x_test, y_test = torch.randn(256, 8), torch.randint(0, 3, (256,))  # optional: held-out inputs and targets

done = torchzoo.package(
    model,
    example_inputs=(x,),
    name="my-net",
    task="classification",
    labels=["cat", "dog", "bird"],
    dynamic_dims={"x": {0: "batch"}},
    heldout=(x_test, y_test),
    artifacts_dir="artifacts",
)
for report in done.outcome.reports:
    print(report.summary())

# the same model as an ExportedProgram file: `torchzoo export my_net.pt2` needs no source code
program = torch.export.export(model.eval(), (x,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
torch.export.save(program, "my_net.pt2")
