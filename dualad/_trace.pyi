# Type stub of dualad._trace (the compiled program of dualad.function); internal.
from typing import Any, Sequence

from ._core import Tensor, TraceSink, Variable

INSTR_KINDS: dict[str, int]


class Tracer(TraceSink):
    instrs: list[Any]
    consts: dict[int, Tensor]
    n_slots: int
    def input(self, t: Tensor) -> int: ...
    def variable_input(self, v: Variable) -> int: ...
    def output(self, t: Tensor) -> int: ...
    def mark(self) -> tuple[int, int]: ...
    def compress_loop(self, marks: list[tuple[int, int]]) -> None: ...


class Node:
    instrs: list[Any]
    children: dict[Any, Node]
    guard: Any
    out_slots: tuple[int, ...]
    finish: Any
    @property
    def slots_needed(self) -> int | None: ...


def begin_trace() -> Tracer: ...
def replay(root: Node, inputs: Sequence[Tensor], n_slots: int = 0,
           variables: Sequence[Variable] = ()) -> tuple[Node, list[Tensor | None]] | None: ...
def __getattr__(name: str) -> Any: ...
