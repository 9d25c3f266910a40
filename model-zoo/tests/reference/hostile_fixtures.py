"""Writes the hostile PyTorch files of model-zoo/tests/weights.rs: state dicts whose pickle asks
for `os.system` (a value whose __reduce__ names it, as a malicious checkpoint does), in the zip
format (pickle protocols 2 and 4) and in the legacy one, beside a harmless legacy-format state dict of a linear layer.
Loading must refuse the first two, naming the global, and read the third.

usage: python hostile_fixtures.py  (torch from PyPI; writes ../fixtures/weights/)
"""

import os
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "weights"


class RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo this file ran a command",))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    state = {"weight": torch.zeros(3, 4), "bias": torch.zeros(3)}
    torch.save({**state, "extra": RunsACommand()}, OUT / "hostile.pth")
    torch.save(
        {**state, "extra": RunsACommand()},
        OUT / "hostile-legacy.pth",
        _use_new_zipfile_serialization=False,
    )
    # Protocol 4 names globals with STACK_GLOBAL and memoised strings instead of GLOBAL.
    torch.save({**state, "extra": RunsACommand()}, OUT / "hostile-protocol4.pth", pickle_protocol=4)
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 3)
    torch.save(linear.state_dict(), OUT / "linear-legacy.pth", _use_new_zipfile_serialization=False)
    print("written to", OUT)


if __name__ == "__main__":
    main()
