"""The page's matrix-vector kernel as a WebAssembly module, assembled here byte by byte (no toolchain needed).

One exported function, ``matvec(w, x, y, rows, cols)``: ``y[r] += sum_c W[r, c] * x[c]`` on float32, with
SIMD (f32x4). Addresses are bytes into the imported memory ``env.memory``. ``rows`` is a multiple of
``ROWS`` and ``cols`` of 4, and ``W`` is stored in blocks: for each group of ROWS rows, for each 4
columns, the ROWS rows' 4 values one after another, so one pointer walks the matrix with fixed offsets
and each loaded x is used ROWS times. ``runtime.js`` pads and lays out the weights so.

In text form (WAT) the body is::

    xend = x + cols*4; yend = y + rows*4
    loop over groups while y < yend:
        acc[0..ROWS) = 0; xp = x
        loop over columns:  xv = load(xp); acc[i] += load(w + 16 i) * xv; w += 16 ROWS; xp += 16
        y[i] += acc[i].lane0 + acc[i].lane1 + acc[i].lane2 + acc[i].lane3;  y += 4 ROWS
"""
from __future__ import annotations

import functools

ROWS = 4          # rows per block: 8 was no faster than 4 (bench.browser_speed; bench/RESULTS.md, "Generation")
I32, V128, VOID = 0x7F, 0x7B, 0x40
W, X, Y, NROWS, NCOLS, XEND, XP, YEND, XV = range(9)       # locals: 5 parameters, then ours
ACC = 9                                                    # ROWS v128 accumulators from here


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def simd(op: int, *imm: bytes) -> bytes:
    return b"\xfd" + uleb(op) + b"".join(imm)


def get(i): return b"\x20" + uleb(i)               # local.get
def put(i): return b"\x21" + uleb(i)               # local.set
def tee(i): return b"\x22" + uleb(i)               # local.tee
def const(n): return b"\x41" + sleb(n)             # i32.const
ADD, SHL, LT_U, GE_U = b"\x6a", b"\x74", b"\x49", b"\x4f"
F32_ADD = b"\x92"
def f32_load(offset): return b"\x2a" + uleb(2) + uleb(offset)
def f32_store(offset): return b"\x38" + uleb(2) + uleb(offset)
def v_load(offset): return simd(0x00, uleb(4), uleb(offset))
V_ZERO = simd(0x0C, bytes(16))
F32X4_ADD, F32X4_MUL = simd(0xE4), simd(0xE6)
def lane(i): return simd(0x1F, bytes([i]))         # f32x4.extract_lane


def section(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + uleb(len(body)) + body


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def name(s: str) -> bytes:
    return uleb(len(s)) + s.encode()


def body(rows: int) -> bytes:
    """The instructions of matvec (see the module docstring)."""
    acc = [ACC + i for i in range(rows)]
    code = [get(X), get(NCOLS), const(2), SHL, ADD, put(XEND), get(Y), get(NROWS), const(2), SHL, ADD, put(YEND),
            b"\x02\x40", b"\x03\x40",                               # block, loop (groups)
            get(Y), get(YEND), GE_U, b"\x0d\x01"]                    # br_if 1: done
    code += [V_ZERO + put(a) for a in acc] + [get(X), put(XP), b"\x03\x40"]          # loop (columns)
    code += [get(XP), v_load(0), put(XV)]
    code += [get(a) + get(W) + v_load(16 * i) + get(XV) + F32X4_MUL + F32X4_ADD + put(a) for i, a in enumerate(acc)]
    code += [get(W), const(16 * rows), ADD, put(W),
             get(XP), const(16), ADD, tee(XP), get(XEND), LT_U, b"\x0d\x00", b"\x0b"]  # br_if 0; end (columns)
    for i, a in enumerate(acc):
        code += [get(Y), get(Y), f32_load(4 * i), get(a), lane(0), F32_ADD, get(a), lane(1), F32_ADD,
                 get(a), lane(2), F32_ADD, get(a), lane(3), F32_ADD, f32_store(4 * i)]
    code += [get(Y), const(4 * rows), ADD, put(Y), b"\x0c\x00", b"\x0b", b"\x0b", b"\x0b"]  # br 0; end; end; end
    locals_ = vec([uleb(3) + bytes([I32]), uleb(1 + rows) + bytes([V128])])
    fn = locals_ + b"".join(code)
    return uleb(len(fn)) + fn


@functools.cache
def matvec_module(rows: int = ROWS) -> bytes:
    """The module's bytes: imports env.memory, exports matvec."""
    types = section(1, vec([b"\x60" + vec([bytes([I32])] * 5) + vec([])]))
    imports = section(2, vec([name("env") + name("memory") + b"\x02\x00" + uleb(1)]))   # memory, min 1 page
    funcs = section(3, vec([uleb(0)]))
    exports = section(7, vec([name("matvec") + b"\x00" + uleb(0)]))
    code = section(10, vec([body(rows)]))
    return b"\x00asm\x01\x00\x00\x00" + types + imports + funcs + exports + code
