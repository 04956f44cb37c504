"""Compiled loops of `syncvid.face.ert`: reading dlib's serialisation and evaluating the trees.

Kept apart so that numba is imported only when the shape predictor is used.  `cache=True`
keeps the machine code (beside this file, or in numba's user-wide cache folder when this
folder cannot be written), so only the first process on a machine compiles.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)
# The readers check every index (a truncated or foreign file raises IndexError, never reads
# past the buffer); the predictor's indices come from a model the reader has validated.
_checked_jit = numba.njit(cache=True, nogil=True, boundscheck=True)

# dlib's serialisation: an integer is a byte holding its length (low 4 bits) and sign (0x80),
# then that many little-endian bytes; a float is two integers, mantissa and binary exponent
# (exponents from 32000 up code inf, -inf and nan); a column matrix is its two sizes (negated
# in dlib's current format) then its values; a std::vector is its length then its elements.


@_checked_jit
def read_int(buf, pos):
    head = buf[pos]
    n = head & 0x0F
    value = np.int64(0)
    for i in range(n):
        value |= np.int64(buf[pos + 1 + i]) << np.int64(8 * i)
    if head & 0x80:
        value = -value
    return value, pos + 1 + n


@_checked_jit
def read_float(buf, pos):
    mantissa, pos = read_int(buf, pos)
    exponent, pos = read_int(buf, pos)
    if exponent >= 32000:
        return np.nan, pos
    return np.float64(mantissa) * 2.0 ** np.float64(exponent), pos


@_checked_jit
def skip_matrix(buf, pos):
    nr, pos = read_int(buf, pos)
    nc, pos = read_int(buf, pos)
    for _ in range(abs(nr) * abs(nc)):
        _, pos = read_float(buf, pos)
    return pos


@_checked_jit
def read_matrix(buf, pos, out):
    """Reads a column matrix of exactly out.size values into out; -1 when the size differs."""
    nr, pos = read_int(buf, pos)
    nc, pos = read_int(buf, pos)
    if abs(nr) * abs(nc) != out.shape[0]:
        return -1
    for i in range(out.shape[0]):
        v, pos = read_float(buf, pos)
        out[i] = v
    return pos


@_checked_jit
def skip_tree(buf, pos):
    """(splits, leaves, position after the tree)."""
    splits, pos = read_int(buf, pos)
    for _ in range(splits):
        _, pos = read_int(buf, pos)
        _, pos = read_int(buf, pos)
        _, pos = read_float(buf, pos)
    leaves, pos = read_int(buf, pos)
    for _ in range(leaves):
        pos = skip_matrix(buf, pos)
    return splits, leaves, pos


@_checked_jit
def model_sizes(buf):
    """[C, T, S, L, 2P, F]: cascade levels, trees per level, splits and leaves of the first tree,
    shape length, feature pixels of the first level."""
    _, pos = read_int(buf, 0)  # version
    nr, pos = read_int(buf, pos)
    nc, pos = read_int(buf, pos)
    p2 = abs(nr) * abs(nc)
    for _ in range(p2):
        _, pos = read_float(buf, pos)
    levels, pos = read_int(buf, pos)
    trees, splits, leaves = 0, 0, 0
    for c in range(levels):
        n, pos = read_int(buf, pos)
        for t in range(n):
            s, l, pos = skip_tree(buf, pos)
            if c == 0 and t == 0:
                trees, splits, leaves = n, s, l
    _, pos = read_int(buf, pos)  # number of anchor lists
    features, pos = read_int(buf, pos)
    return np.array([levels, trees, splits, leaves, p2, features], np.int64)


@_checked_jit
def parse_model(buf, dims, initial, split_features, split_thresholds, leaves, anchors, deltas):
    """Fills the arrays from the file; returns the position after the model, or a negative code
    (see `syncvid.face.ert._PARSE_STEPS`) naming what did not match."""
    C, T, S, L, P2, F = dims[0], dims[1], dims[2], dims[3], dims[4], dims[5]
    version, pos = read_int(buf, 0)
    if version != 1:
        return -1
    pos = read_matrix(buf, pos, initial)
    if pos < 0:
        return -2
    n, pos = read_int(buf, pos)
    if n != C:
        return -3
    for c in range(C):
        n, pos = read_int(buf, pos)
        if n != T:
            return -4
        for t in range(T):
            n, pos = read_int(buf, pos)
            if n != S:
                return -5
            for s in range(S):
                a, pos = read_int(buf, pos)
                b, pos = read_int(buf, pos)
                if a < 0 or a >= F or b < 0 or b >= F:
                    return -6
                split_features[c, t, s, 0] = a
                split_features[c, t, s, 1] = b
                v, pos = read_float(buf, pos)
                split_thresholds[c, t, s] = v
            n, pos = read_int(buf, pos)
            if n != L:
                return -7
            for leaf in range(L):
                pos = read_matrix(buf, pos, leaves[c, t, leaf])
                if pos < 0:
                    return -8
    n, pos = read_int(buf, pos)
    if n != C:
        return -9
    for c in range(C):
        n, pos = read_int(buf, pos)
        if n != F:
            return -10
        for f in range(F):
            a, pos = read_int(buf, pos)
            if a < 0 or 2 * a >= P2:
                return -11
            anchors[c, f] = a
    n, pos = read_int(buf, pos)
    if n != C:
        return -12
    for c in range(C):
        n, pos = read_int(buf, pos)
        if n != F:
            return -13
        for f in range(F):
            x, pos = read_float(buf, pos)
            y, pos = read_float(buf, pos)
            deltas[c, f, 0] = x
            deltas[c, f, 1] = y
    return pos


@_jit
def add_leaves(shape, leaves, chosen):
    """shape += leaves[t, chosen[t]] for every tree t, in tree order (the same float sums as
    adding them one by one).  Eight leaves are read in one pass: each is a cache miss of its
    own, and reading eight at once lets the processor wait for them together."""
    T = chosen.shape[0]
    n = shape.shape[0]
    t = 0
    while t + 8 <= T:
        l0 = leaves[t, chosen[t]]
        l1 = leaves[t + 1, chosen[t + 1]]
        l2 = leaves[t + 2, chosen[t + 2]]
        l3 = leaves[t + 3, chosen[t + 3]]
        l4 = leaves[t + 4, chosen[t + 4]]
        l5 = leaves[t + 5, chosen[t + 5]]
        l6 = leaves[t + 6, chosen[t + 6]]
        l7 = leaves[t + 7, chosen[t + 7]]
        for j in range(n):
            shape[j] = (((((((shape[j] + l0[j]) + l1[j]) + l2[j]) + l3[j]) + l4[j]) + l5[j]) + l6[j]) + l7[j]
        t += 8
    while t < T:
        leaf = leaves[t, chosen[t]]
        for j in range(n):
            shape[j] += leaf[j]
        t += 1


@_jit
def predict(image, box, initial, ref_centred, ref_sigma, split_features, split_thresholds, leaves, anchors, deltas,
            out):
    """dlib's `shape_predictor::operator()` on `image` (H×W×1 or H×W×3 uint8) in `box`
    (left, top, right, bottom); writes the P landmarks, unrounded, into out [P, 2]."""
    height, width, channels = image.shape[0], image.shape[1], image.shape[2]
    left, top = box[0], box[1]
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    C, T, S = split_thresholds.shape[0], split_thresholds.shape[1], split_thresholds.shape[2]
    P2 = initial.shape[0]
    P = P2 // 2
    F = deltas.shape[1]
    shape = initial.copy()
    feat = np.empty(F, np.float32)
    chosen = np.empty(T, np.int64)
    for c in range(C):
        # The similarity transform mean shape -> current shape (Umeyama's least squares, as
        # dlib's find_similarity_transform), in its closed 2-D form: c·R = [[a, -b], [b, a]].
        mx = 0.0
        my = 0.0
        for i in range(P):
            mx += shape[2 * i]
            my += shape[2 * i + 1]
        mx /= P
        my /= P
        c00 = 0.0
        c01 = 0.0
        c10 = 0.0
        c11 = 0.0
        for i in range(P):
            tx = shape[2 * i] - mx
            ty = shape[2 * i + 1] - my
            c00 += tx * ref_centred[i, 0]
            c01 += tx * ref_centred[i, 1]
            c10 += ty * ref_centred[i, 0]
            c11 += ty * ref_centred[i, 1]
        m00 = np.float32((c00 + c11) / P / ref_sigma)
        m10 = np.float32((c10 - c01) / P / ref_sigma)
        m01 = -m10
        m11 = m00
        for f in range(F):
            dx = deltas[c, f, 0]
            dy = deltas[c, f, 1]
            k = anchors[c, f]
            px = (m00 * dx + m01 * dy) + shape[2 * k]
            py = (m10 * dx + m11 * dy) + shape[2 * k + 1]
            x = np.floor(left + box_w * np.float64(px) + 0.5)
            y = np.floor(top + box_h * np.float64(py) + 0.5)
            if 0.0 <= x < width and 0.0 <= y < height:
                ix = int(x)
                iy = int(y)
                if channels == 3:
                    total = np.int32(image[iy, ix, 0]) + np.int32(image[iy, ix, 1]) + np.int32(image[iy, ix, 2])
                    feat[f] = np.float32(total // 3)
                else:
                    feat[f] = np.float32(image[iy, ix, 0])
            else:
                feat[f] = np.float32(0.0)
        for t in range(T):
            i = 0
            while i < S:  # left child 2i+1 when the split holds, else 2i+2 (no branch to mispredict)
                goes_left = feat[split_features[c, t, i, 0]] - feat[split_features[c, t, i, 1]] > split_thresholds[c, t, i]
                i = 2 * i + 2 - np.int64(goes_left)
            chosen[t] = i - S
        add_leaves(shape, leaves[c], chosen)
    for i in range(P):
        out[i, 0] = left + box_w * np.float64(shape[2 * i])
        out[i, 1] = top + box_h * np.float64(shape[2 * i + 1])
