# high-precision (x87 long double, eps 1.1e-19) reference of the small linear case's leave-one-composition-out
import json, sys, numpy as np
L = np.longdouble
def load(path):
    raw = np.fromfile(path, dtype='<f8'); i = 0; out = []
    while i < len(raw):
        n, rows, natoms = int(raw[i]), int(raw[i+1]), int(raw[i+2]); i += 3
        a = raw[i:i+rows*n].reshape(rows, n); i += rows*n
        b = raw[i:i+rows]; i += rows
        out.append((a, b, natoms))
    return out
def lstsq(A, b):
    # Householder QR in long double; returns R, Qtb
    A = A.astype(L).copy(); b = b.astype(L).copy(); m, n = A.shape
    for k in range(n):
        x = A[k:, k]
        nx = np.sqrt(np.sum(x*x))
        if nx == 0: continue
        alpha = x[0]; beta = -nx if alpha >= 0 else nx
        v = x.copy(); v[0] = alpha - beta; v /= v[0]
        tau = (beta - alpha) / beta
        w = tau * (v @ A[k:, k:]); A[k:, k:] -= np.outer(v, w)
        b[k:] -= tau * (v @ b[k:]) * v
    return np.triu(A[:n, :n]), b[:n]
def backsub(R, y):
    n = len(y); x = np.zeros(n, dtype=L)
    for k in range(n - 1, -1, -1):
        x[k] = (y[k] - R[k, k+1:] @ x[k+1:]) / R[k, k]
    return x
def fsub(Rt, y):  # solve R^T u = y
    n = len(y); u = np.zeros(n, dtype=L)
    for k in range(n):
        u[k] = (y[k] - Rt[:k] @ u[:k]) / Rt[k] if False else (y[k] - Rt[:k, k] @ u[:k]) / Rt[k, k]
    return u
full = load(sys.argv[1]); refd = load(sys.argv[2]); lam = float(sys.argv[3]); got = json.load(open(sys.argv[4]))
n = full[0][0].shape[1]
cu = got['cu']
def solve(blocks):
    A = np.vstack([np.sqrt(L(lam)) * np.eye(n, dtype=L)] + [blk[0].astype(L) for blk in blocks])
    b = np.concatenate([np.zeros(n, dtype=L)] + [blk[1].astype(L) for blk in blocks])
    R, y = lstsq(A, b)
    return R, backsub(R, y), A
print('n', n, 'rows', sum(len(b[1]) for b in full))
for name, blocks in (('full', full), ('refit', refd)):
    R, th, A = solve(blocks)
    s = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    print(name, 'cond(A) ~ %.3e' % (s[0] / s[-1]))
    res = {}
    for j, k in enumerate(cu):
        a0, b0, na = full[k][0][0].astype(L), L(full[k][1][0]), full[k][2]
        sig = L(0.002) * np.sqrt(L(na))
        err = sig * (a0 @ th - b0)
        u = fsub(R, sig * a0)
        res.setdefault('err', []).append(err); res.setdefault('var', []).append(u @ u)
    if name == 'full':
        errs_full = res['err']
        # the closed form in long double
        U = [fsub(R, L(0.002) * np.sqrt(L(full[k][2])) * full[k][0][0].astype(L)) for k in cu]
        sig = [L(0.002) * np.sqrt(L(full[k][2])) for k in cu]
        m = len(cu); H = np.array([[U[a] @ U[b] / (sig[a] * sig[b]) for b in range(m)] for a in range(m)], dtype=L)
        B = np.eye(m, dtype=L) - H
        print('cond(I-H) %.3e' % np.linalg.cond(B.astype(np.float64)), 'eig(I-H) min %.3e' % np.linalg.eigvalsh(B.astype(np.float64)).min())
        # solve B z = r/σ in long double (Gauss)
        def gsolve(B, y):
            B = B.copy(); y = y.copy(); m = len(y)
            for c in range(m):
                for r in range(c+1, m):
                    f = B[r, c] / B[c, c]; B[r] -= f * B[c]; y[r] -= f * y[c]
            return backsub(B, y)
        z = gsolve(B, np.array([errs_full[a] / sig[a] for a in range(m)], dtype=L))
        cf_err = [sig[a] * z[a] for a in range(m)]
        BH = np.array([gsolve(B, H[:, c]) for c in range(m)], dtype=L).T
        cf_var = [sig[a]**2 * BH[a, a] for a in range(m)]
    else:
        ref_err, ref_var = res['err'], res['var']
print('closed form (long double) vs refit (long double): err %.2e var %.2e' % (
    max(abs(cf_err[j] - ref_err[j]) / abs(ref_err[j]) for j in range(len(cu))),
    max(abs(cf_var[j] - ref_var[j]) / ref_var[j] for j in range(len(cu)))))
for label, key, vkey in (('acdc closed form', 'lco', 'lcoVar'), ('acdc refit', 'refit', 'refitVar')):
    e = max(abs(L(got[key][j]) - ref_err[j]) / abs(ref_err[j]) for j in range(len(cu)))
    v = max(abs(L(got[vkey][j]) - ref_var[j]) / ref_var[j] for j in range(len(cu)))
    print('%-18s vs exact: err %.3e  var %.3e' % (label, e, v))
