"""Streaming text generation from a trained model, one character at a time.

The prime is fed in one fused call; each new character is then one small
recurrent step carrying the state. For an LSTM the embedding's input
projection is precomputed into a (V, 4H) table, so a step is one lookup, one
matrix-vector product and a few pointwise ops per layer, done in float32 numpy
into preallocated arrays (at batch 1 per-call overhead is the whole cost).
Sampling is inverse-CDF search with a seeded stream of uniform numbers that the page's
JavaScript (webui/generate/static/runtime.js) reproduces bit for bit: one seed, one text.
"""
from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import ThreadpoolController

from charrnn.model import CharRNN
from charrnn.vocab import Vocab

DEFAULT_STARTS = ("\n", " ")
MAX_LENGTH = 1_000_000
MAX_TOP_K_NOTE = "top_k must be between 1 and the vocabulary size"


def default_start(vocab: Vocab) -> str:
    """Where an empty prime starts: a newline (start of a line), else a space, else the first character."""
    for c in DEFAULT_STARTS:
        if c in vocab.stoi:
            return c
    return vocab.chars[0]


@functools.cache
def numpy_blas() -> tuple:
    """threadpoolctl's controllers of the BLAS bundled in numpy's wheel (found once: the scan takes ~7 ms)."""
    numpy_dir = Path(np.__file__).resolve().parent
    bundled = {numpy_dir.parent / "numpy.libs", numpy_dir / ".dylibs"}     # Linux/Windows and macOS wheels
    return tuple(lib for lib in ThreadpoolController().lib_controllers
                 if lib.user_api == "blas" and Path(lib.filepath).resolve().parent in bundled)


def one_blas_thread() -> bool:
    """Keep numpy's bundled BLAS on one thread for this thread's steps; True if it is now on one.

    A step's matrix-vector products are too small to gain from threads, and when the
    other core is busy (the app's trainer) a two-thread gemv waits for it: 275 vs 40 us
    per step measured at hidden 384. Only the BLAS inside numpy's wheel is limited: torch's
    OpenMP pool (and a system BLAS torch may share) keeps its threads. Called per generation,
    as an OpenMP-threaded BLAS takes the limit per calling thread (a pthreads one, process-wide).
    """
    libs = numpy_blas()
    for lib in libs:
        lib.set_num_threads(1)
    return bool(libs) and all(lib.get_num_threads() == 1 for lib in libs)


class Stepper:
    """Runs the model one character at a time, carrying the recurrent state.

    For an LSTM a step is done in float32 numpy on the CPU: at batch 1 the cost
    is per-call overhead, and a numpy ufunc costs a fraction of a torch op.
    """

    def __init__(self, model: CharRNN):
        self.model = model
        self.cfg = model.config
        self.fast = self.cfg.cell == "lstm"
        self._state = None                    # torch state of the fused call (when not stepping in numpy)
        self._stepping = False                # True while the state lives in the numpy arrays below
        if self.fast:
            self._prepare_numpy()

    def _prepare_numpy(self) -> None:
        """Weights as float32 numpy, gates reordered (i, f, o, g) and i, f, o halved; buffers and their views.

        sigmoid(x) = 0.5 * tanh(x / 2) + 0.5, so one tanh over all 4H gates does both
        nonlinearities; halving a weight is exact in floating point.
        """
        one_blas_thread()
        rnn, H, L = self.model.rnn, self.cfg.hidden, self.cfg.layers
        order = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
        scale = torch.ones(4 * H)
        scale[:3 * H] = 0.5

        def prep(w: torch.Tensor) -> np.ndarray:          # (4H, ...) in torch order -> ours, as numpy
            w = w.detach().float().cpu()[order]
            return np.ascontiguousarray((w * scale.view(-1, *[1] * (w.dim() - 1))).numpy())

        with torch.no_grad():
            emb = self.model.embed.weight.detach().float().cpu()                 # (V, E)
            table = torch.addmm(rnn.bias_ih_l0.float().cpu() + rnn.bias_hh_l0.float().cpu(), emb,
                                rnn.weight_ih_l0.detach().float().cpu().t())       # (V, 4H)
            self.table = prep(table.t()).T.copy()                                  # (V, 4H)
            # matrices stay (out, in): numpy's W @ h is faster than h @ W^T at these sizes
            self.w_hh = [prep(getattr(rnn, f"weight_hh_l{k}")) for k in range(L)]  # (4H, H)
            self.w_ih = [None] + [prep(getattr(rnn, f"weight_ih_l{k}")) for k in range(1, L)]  # (4H, H)
            self.bias = [None] + [prep(getattr(rnn, f"bias_ih_l{k}") + getattr(rnn, f"bias_hh_l{k}"))
                                  for k in range(1, L)]                             # (4H,)
            head = self.model.head
            # the head's bias rides as an extra column, against a constant 1 after each h
            self.head_wb = torch.cat([head.weight, head.bias[:, None]], 1).detach().float().cpu().numpy()  # (V, H+1)
        self._h = np.ones((L, H + 1), dtype=np.float32)                          # (L, H+1), last column 1
        self._c = np.zeros((L, H), dtype=np.float32)                             # (L, H)
        self._hv = [self._h[k, :H] for k in range(L)]                            # L x (H,) views
        g = self._gates = np.empty(4 * H, dtype=np.float32)
        self._sig, self._i, self._f, self._o, self._g = g[:3 * H], g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
        self._tmp = np.empty(H, dtype=np.float32)
        self._logits = np.empty(self.cfg.vocab_size, dtype=np.float32)

    # --- the state, as torch tensors (L, 1, H) like the fused call's ------------------
    @property
    def state(self):
        if self._stepping:
            H = self.cfg.hidden
            return (torch.from_numpy(self._h[:, None, :H].copy()).to(self.head_device),
                    torch.from_numpy(self._c[:, None, :].copy()).to(self.head_device))
        return self._state

    @state.setter
    def state(self, state) -> None:
        self._state, self._stepping = state, False
        if self.fast and state is not None:
            h, c = state
            self._h[:, :self.cfg.hidden] = h[:, 0].detach().float().cpu().numpy()   # (L, H)
            self._c[:] = c[:, 0].detach().float().cpu().numpy()                     # (L, H)
            self._state, self._stepping = None, True

    @torch.no_grad()
    def prime(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed ids (T,) in one fused call; return the logits (V,) after the last one."""
        logits, _, state = self.model(ids[None, :], state=self.state)            # (1, T, V)
        self.state = state
        return logits[0, -1]

    def step(self, idx: int) -> torch.Tensor:
        """Feed one character id; return the next-character logits (V,)."""
        return torch.from_numpy(self.step_numpy(idx).copy()).to(self.head_device)

    def step_numpy(self, idx: int) -> np.ndarray:
        """Same as step, as float32 numpy (V,); the array is reused by the next call."""
        if not self.fast:
            return self.prime(torch.tensor([idx], device=self.head_device)).float().cpu().numpy()
        if not self._stepping:
            raise RuntimeError("call prime() before step(): there is no state to continue from")
        g, tmp, c_all = self._gates, self._tmp, self._c
        for k, h in enumerate(self._hv):
            c = c_all[k]
            np.dot(self.w_hh[k], h, out=g)                                       # (4H,)
            if k == 0:
                g += self.table[idx]
            else:
                g += self.bias[k]
                g += self.w_ih[k] @ self._hv[k - 1]
            np.tanh(g, out=g)
            self._sig *= 0.5                                                     # i, f, o: sigmoids
            self._sig += 0.5
            c *= self._f
            np.multiply(self._i, self._g, out=tmp)
            c += tmp
            np.tanh(c, out=tmp)
            np.multiply(self._o, tmp, out=h)
        return np.dot(self.head_wb, self._h[-1], out=self._logits)              # (V,)

    @property
    def head_device(self):
        return self.model.head.weight.device


def next_distribution(logits: torch.Tensor, temperature: float, top_k: int | None = None) -> torch.Tensor:
    """Probabilities (V,) of the next character: softmax(logits / T), stable for small T; T=0 is one-hot argmax."""
    logits = logits.float()
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if temperature <= 0:
        return F.one_hot(logits.argmax(), logits.numel()).float()
    scaled = (logits.double() - logits.max()) / temperature    # <= 0, so no overflow even for T ~ 1e-300
    return torch.softmax(scaled, dim=-1).float()


def check_sampling_args(vocab: Vocab, length: int, temperature: float, top_k: int | None) -> None:
    """Refuse arguments that cannot be sampled with, saying the allowed range."""
    if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= MAX_LENGTH:
        raise ValueError(f"length must be a whole number from 0 to {MAX_LENGTH:,}, got {length!r}")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or not 1 <= top_k <= len(vocab)):
        raise ValueError(f"{MAX_TOP_K_NOTE} ({len(vocab)}), got {top_k!r}")


# --- the random stream: the same numbers in numpy here and in the page's JavaScript (runtime.js) -------
GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def uniforms(seed: int, start: int, n: int) -> np.ndarray:
    """Numbers start .. start+n-1 (float64, in [0, 1)) of ``seed``'s stream: SplitMix64, top 53 bits.

    Number i is a function of (seed, i) alone, so a block is computed at once, any engine that does
    64-bit integer arithmetic (JavaScript's BigInt) gets the same bits, and the float is exact.
    """
    state = np.uint64(seed % 2**64) + GAMMA * np.arange(start + 1, start + n + 1, dtype=np.uint64)  # wraps
    z = (state ^ (state >> np.uint64(30))) * MIX[0]
    z = (z ^ (z >> np.uint64(27))) * MIX[1]
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


class Sampler:
    """Draws a character id from logits (V,) at a temperature, seeded and allocation-light.

    Inverse-CDF sampling, the rule runtime.js's pick() follows step for step: character n uses number n
    of the seed's stream (``uniforms``), searched in the running sum of exp((logits - max) / T) computed
    in float64 from the float32 logits; top-k zeroes all but the k largest logits (ties kept). T = 0 is
    argmax (the first of equals).
    """

    BLOCK = 1024  # uniforms drawn at a time

    def __init__(self, temperature: float, top_k: int | None, seed: int | None):
        self.temperature, self.top_k = float(temperature), top_k
        # seed None: fresh OS entropy, leaving torch's and numpy's global generators alone
        self.seed = secrets.randbits(64) if seed is None else seed % 2**64
        self.drawn = 0
        self.uniform = None                   # the stream's numbers for the current block of BLOCK characters
        self.z = self.cdf = None

    def __call__(self, logits: np.ndarray) -> tuple[int, float]:
        """The next character's id and the probability it was drawn with; each call uses the stream's next number."""
        n, self.drawn = self.drawn, self.drawn + 1
        if n % self.BLOCK == 0:
            self.uniform = uniforms(self.seed, n, self.BLOCK)
        if self.temperature <= 0:
            return int(np.argmax(logits)), 1.0
        return self.pick(logits, self.uniform[n % self.BLOCK])

    def pick(self, logits: np.ndarray, u: float) -> tuple[int, float]:
        """The id the uniform number ``u`` falls on at this temperature and top-k, and its probability."""
        if self.z is None:
            self.z, self.cdf = np.empty(len(logits)), np.empty(len(logits))
        z, cdf = self.z, self.cdf
        np.subtract(logits, logits[logits.argmax()], out=z, dtype=np.float64)   # <= 0; float64 like JavaScript's
        z /= self.temperature                                         # division: stays finite for T ~ 1e-300
        np.exp(z, out=z)
        if self.top_k is not None and self.top_k < len(logits):
            kth = np.partition(logits, len(logits) - self.top_k)[len(logits) - self.top_k]
            z[logits < kth] = 0.0
        np.add.accumulate(z, out=cdf)                                 # in order, like the page's running sum
        total = cdf[-1]
        idx = int(cdf.searchsorted(u * total, side="right"))         # the first running sum above u * total
        if idx >= len(cdf):                                           # u * total rounded up to total
            idx = int(np.flatnonzero(z)[-1])
        return idx, float(z[idx] / total)


def generate_with_probs(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200,
                        temperature: float = 0.8, top_k: int | None = None, seed: int | None = None,
                        unknown: str = "error") -> Iterator[tuple[str, float]]:
    """Yield (character, probability it was sampled with) for exactly ``length`` new characters."""
    check_sampling_args(vocab, length, temperature, top_k)
    prime = vocab.clean(prime, unknown) or default_start(vocab)
    model.eval()
    stepper = Stepper(model)
    logits = stepper.prime(vocab.encode(prime).long().to(stepper.head_device)).float().cpu().numpy()
    draw = Sampler(temperature, top_k, seed)
    for n in range(length):
        idx, p = draw(logits)
        yield vocab.chars[idx], p
        if n + 1 < length:
            logits = stepper.step_numpy(idx)


def generate(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200,
             temperature: float = 0.8, top_k: int | None = None, seed: int | None = None,
             unknown: str = "error") -> Iterator[str]:
    """Yield exactly ``length`` new characters, one at a time, continuing ``prime``."""
    for ch, _ in generate_with_probs(model, vocab, prime, length, temperature, top_k, seed, unknown):
        yield ch
