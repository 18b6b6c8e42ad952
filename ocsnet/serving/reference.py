"""The plain event loop: one replica simulated iteration by iteration (the test oracle and the baseline).

Stage: serving (see docs/design.md).  Same scheduling rules as
:func:`.engine.run_replica` (see its module notes), written the direct way:
per-request state in arrays, every iteration composed from masks and timed by
the :class:`~.iteration.IterationModel`.  Used by the tests as an independent
implementation and by ``benchmarks/bench_serving.py`` as the baseline.
"""

from __future__ import annotations

import numpy as np

__all__ = ["run_replica_plain"]


def run_replica_plain(arrival, prompt, output, model, *, capacity_tokens: int, max_batch: int, max_tokens: int,
                      chunk: int = 0, prefilled: bool = False):
    """Step every iteration; return ``(admit_s, first_s, finish_s)`` like :func:`.engine.run_replica`."""
    arr = np.asarray(arrival, float)
    pr = np.asarray(prompt, np.int64)
    out = np.asarray(output, np.int64)
    n = len(arr)
    admit = np.full(n, np.nan)
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    done_prompt = np.zeros(n, np.int64)      # prompt tokens prefilled
    gen = np.zeros(n, np.int64)              # tokens generated
    state = np.zeros(n, np.int8)             # 0 waiting, 1 prefill, 2 decode, 3 done
    t = 0.0
    while (state != 3).any():
        # admission: first come first served, at the iteration boundary
        running = int(((state == 1) | (state == 2)).sum())
        used = int((pr + out)[(state == 1) | (state == 2)].sum())
        for i in np.flatnonzero(state == 0):
            if arr[i] > t or running >= max_batch or used + pr[i] + out[i] > capacity_tokens:
                break
            admit[i] = t
            running += 1
            used += int(pr[i] + out[i])
            if prefilled:
                done_prompt[i] = pr[i]
                first[i] = t
                gen[i] = 1
                state[i] = 2 if out[i] > 1 else 3
                if out[i] <= 1:             # nothing to decode: done at once, its slot is free again
                    finish[i] = t
                    running -= 1
                    used -= int(pr[i] + out[i])
            else:
                state[i] = 1
        if not ((state == 1) | (state == 2)).any():
            t = max(t, float(arr[np.flatnonzero(state == 0)[0]]))
            continue
        pre = np.flatnonzero(state == 1)
        dec = np.flatnonzero(state == 2)
        chunks = {}
        if len(pre) and not chunk:
            dec = dec[:0]                        # prefill first: the decodes wait
            tokens = 0
            for i in pre:
                if chunks and tokens + pr[i] > max_tokens:
                    break
                chunks[i] = int(pr[i])
                tokens += int(pr[i])
        elif len(pre):
            budget = chunk - len(dec)
            for i in pre:
                if budget <= 0:
                    break
                c = int(min(pr[i] - done_prompt[i], budget))
                chunks[i] = c
                budget -= c
        tokens = len(dec) + sum(chunks.values())
        dt = model.base(tokens)
        for i, c in chunks.items():
            o = int(done_prompt[i])
            dt += model.attn_prefill(c * o + c * (c + 1) / 2.0)
        if len(dec):
            dt += model.attn_decode(float((pr[dec] + gen[dec]).sum()))
        t += dt
        gen[dec] += 1
        fin = dec[gen[dec] >= out[dec]]
        finish[fin] = t
        state[fin] = 3
        for i, c in chunks.items():
            done_prompt[i] += c
            if done_prompt[i] == pr[i]:
                first[i] = t
                gen[i] = 1
                state[i] = 2 if out[i] > 1 else 3
                if out[i] <= 1:
                    finish[i] = t
    return admit, first, finish
