"""The continuous-batching simulator of one replica: event to event, not iteration by iteration.

Stage: serving (see docs/design.md).  :func:`run_replica` simulates one
replica (or one pipeline micro-batch slot) serving its requests with
iteration-level scheduling (Orca, vLLM):

- **Admission** at iteration boundaries, first come first served: the oldest
  waiting request is admitted while fewer than ``max_batch`` requests run and
  its KV cache (prompt plus output tokens, reserved whole: no preemption) fits
  in ``capacity_tokens``.
- **Prefill first** (``chunk=0``, vLLM's default scheduler): if admitted
  requests wait for their prefill, the iteration runs their prompts (oldest
  first, up to ``max_tokens`` tokens, at least one prompt) and no decode.
- **Chunked prefill** (``chunk>0``, Sarathi-Serve): every iteration runs one
  token of each decoding request plus prompt chunks (oldest first) up to a
  budget of ``chunk`` tokens.
- The iteration that ends a prompt yields the first token; each later
  iteration that includes the request yields one more.  Requests of a
  decode-only pool (``prefilled=True``, the decode side of a phase split)
  start decoding at admission.

Between two events (an admission, a finished prompt, a finished request) the
batch does not change and only its KV grows by one token per request per
iteration, so the iteration times of such a run form an arithmetic series
within one piece of the decode-attention table: the run is summed in closed
form and the simulator jumps over it (solving a quadratic for the iteration at
which the next arrival may be admitted).  :mod:`.reference` is the plain event
loop that steps every iteration; the tests check that both give the same times.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np

__all__ = ["run_replica"]


def _first_reaching(c0: float, d: float, gap: float) -> int:
    """Smallest n >= 1 with n c0 + d n (n - 1) / 2 >= gap (c0 > 0, d >= 0)."""
    if gap <= c0:
        return 1
    if d <= 0.0:
        n = math.ceil(gap / c0)
    else:
        b = c0 - 0.5 * d
        n = math.ceil((math.sqrt(b * b + 2.0 * d * gap) - b) / d)
    # the closed form can be off by one in floating point: settle it on the sum itself
    while n > 1 and (n - 1) * (c0 + 0.5 * d * (n - 2)) >= gap:
        n -= 1
    while n * (c0 + 0.5 * d * (n - 1)) < gap:
        n += 1
    return n


def run_replica(arrival, prompt, output, model, *, capacity_tokens: int, max_batch: int, max_tokens: int,
                chunk: int = 0, prefilled: bool = False):
    """Simulate one replica; return ``(admit_s, first_s, finish_s)`` arrays (one entry per request).

    ``arrival`` must be sorted.  For ``prefilled`` requests ``first_s`` is the
    admission time (their first token came from the prefill pool).
    """
    arr = [float(x) for x in arrival]
    pr = [int(x) for x in prompt]
    out = [int(x) for x in output]
    n = len(arr)
    need = [p + o for p, o in zip(pr, out)]
    admit = [math.nan] * n
    first = [math.nan] * n
    finish = [math.nan] * n
    base, ad, ap = model.base, model.attn_decode, model.attn_prefill
    base_of: dict = {}
    cap = int(capacity_tokens)
    t = 0.0
    head = 0
    kv = 0
    nrun = 0
    pend: deque = deque()
    heap: list = []
    it = 0
    B = 0
    K = 0.0
    done = 0

    def start_decode(i):
        nonlocal done, kv, nrun, B, K
        first[i] = t
        if out[i] <= 1:
            finish[i] = t
            done += 1
            kv -= need[i]
            nrun -= 1
        else:
            B += 1
            K += pr[i] + 1
            heapq.heappush(heap, (it + out[i] - 1, i))

    def finish_decodes():
        nonlocal done, kv, nrun, B, K
        while heap and heap[0][0] <= it:
            _, i = heapq.heappop(heap)
            finish[i] = t
            done += 1
            kv -= need[i]
            nrun -= 1
            B -= 1
            K -= pr[i] + out[i]

    while done < n:
        while head < n and arr[head] <= t and nrun < max_batch and kv + need[head] <= cap:
            i = head
            head += 1
            admit[i] = t
            kv += need[i]
            nrun += 1
            if prefilled:
                start_decode(i)
            else:
                pend.append([i, 0])
        if nrun == 0:
            t = arr[head]
            continue
        if pend:
            if chunk:
                budget = chunk - B
                tokens = B
                dt = ad(K) if B else 0.0
                for e in pend:
                    if budget <= 0:
                        break
                    i, o = e
                    c = min(pr[i] - o, budget)
                    dt += ap(c * o + c * (c + 1) / 2.0)
                    tokens += c
                    budget -= c
                    e[1] = o + c
                t += base(tokens) + dt
                if B:
                    it += 1
                    K += B
                    finish_decodes()
                while pend and pend[0][1] == pr[pend[0][0]]:
                    start_decode(pend.popleft()[0])
            else:
                tokens = 0
                batch = []
                while pend and (not batch or tokens + pr[pend[0][0]] <= max_tokens):
                    i = pend.popleft()[0]
                    batch.append(i)
                    tokens += pr[i]
                dt = base(tokens)
                for i in batch:
                    dt += ap(pr[i] * (pr[i] + 1) / 2.0)
                t += dt
                for i in batch:
                    start_decode(i)
            continue
        # a run of identical decode iterations up to the next event
        steps = heap[0][0] - it
        seg, a, s = ad.segment(K)
        end = ad.end(seg)
        if end != math.inf:
            steps = min(steps, max(1, math.ceil((end - K) / B)))
        c0 = base_of.get(B)
        if c0 is None:
            c0 = base_of[B] = base(B)
        c0 += a + s * K
        d = s * B
        if head < n and nrun < max_batch and kv + need[head] <= cap:
            steps = min(steps, _first_reaching(c0, d, arr[head] - t))
        t += steps * c0 + d * steps * (steps - 1) / 2.0
        it += steps
        K += B * steps
        finish_decodes()
    return np.array(admit), np.array(first), np.array(finish)
