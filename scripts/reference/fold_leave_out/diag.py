import json, sys, numpy as np, scipy.linalg as sl
exec(open('./ref.py').read().split("full = load")[0])
full = load('./nal.full'); got = json.load(open('./nal.json')); lam = 0.001
cu = got['cu']; n = full[0][0].shape[1]
A = np.vstack([np.sqrt(lam) * np.eye(n)] + [b[0] for b in full]); bb = np.concatenate([np.zeros(n)] + [b[1] for b in full])
# exact (long double) closed form values from the refit reference
RL, yL = lstsq(A, bb); thL = backsub(RL, yL)
sig = [0.002 * np.sqrt(full[k][2]) for k in cu]
phi = [sig[j] * full[k][0][0] for j, k in enumerate(cu)]
r_exact = [L(sig[j]) * (full[k][0][0].astype(L) @ thL - L(full[k][1][0])) for j, k in enumerate(cu)]
def closed(U, r, prec):
    m = len(cu); T = prec
    H = np.array([[T(U[a]).astype(T) @ T(U[b]).astype(T) / (T(sig[a]) * T(sig[b])) for b in range(m)] for a in range(m)], dtype=T)
    B = np.eye(m, dtype=T) - H
    if T is np.float64:
        c = sl.cho_factor(B); z = sl.cho_solve(c, np.array(r) / np.array(sig)); BH = sl.cho_solve(c, H)
    else:
        z = np.array([0]); 
        Bi = None
        # gauss in long double
        def gsolve(B, y):
            B = B.copy(); y = y.copy()
            for c_ in range(m):
                for r_ in range(c_+1, m):
                    f = B[r_, c_] / B[c_, c_]; B[r_] -= f * B[c_]; y[r_] -= f * y[c_]
            return backsub(B, y)
        z = gsolve(B, np.array([L(r[a]) / L(sig[a]) for a in range(m)], dtype=L)); BH = np.array([gsolve(B, H[:, c_]) for c_ in range(m)], dtype=L).T
    return [sig[a] * z[a] for a in range(m)], [sig[a]**2 * BH[a, a] for a in range(m)]
# streaming LAPACK folds of the rows (shared with perm.py, which runs this file up to here)
def stream(order_rows, block=384):
    R = np.sqrt(lam) * np.eye(n); pend = []
    cnt = 0
    for blk in order_rows:
        pend.append(blk); cnt += len(blk)
        if cnt >= block:
            R = np.linalg.qr(np.vstack([R] + pend), mode='r'); pend = []; cnt = 0
    if pend: R = np.linalg.qr(np.vstack([R] + pend), mode='r')
    return R
ex_e, ex_v = closed([sl.solve_triangular(RL.astype(np.float64), p, trans='T') for p in phi], r_exact, L)  # placeholder
# exact: U from long double R
UL = [fsub(RL, L(1) * p.astype(L)) for p in phi]
ex_e, ex_v = closed(UL, r_exact, L)
def rel(e, v): return '%.2e %.2e' % (max(abs(L(e[j]) - ex_e[j]) / abs(ex_e[j]) for j in range(len(cu))), max(abs(L(v[j]) - ex_v[j]) / ex_v[j] for j in range(len(cu))))
R = np.linalg.qr(A, mode='r'); th = sl.solve_triangular(R, (np.linalg.qr(A)[0].T @ bb))
r_d = [sig[j] * (full[k][0][0] @ th - full[k][1][0]) for j, k in enumerate(cu)]
U_d = [sl.solve_triangular(R, p, trans='T') for p in phi]
U_lR = [fsub(R.astype(L), p.astype(L)) for p in phi]
print('V0 all double                          ', rel(*closed(U_d, r_d, np.float64)))
print('V1 R double, r double, U/H/solve ld    ', rel(*closed(U_lR, r_d, L)))
print('V1b R double, r exact, U/H/solve ld    ', rel(*closed(U_lR, r_exact, L)))
print('V2 R double, U ld rounded, H/solve ld  ', rel(*closed([u.astype(np.float64) for u in U_lR], r_d, L)))
print('V3 R double, U double, H/solve ld      ', rel(*closed(U_d, r_d, L)))
print('V4 R double, U ld rounded, H/solve dbl ', rel(*closed([u.astype(np.float64) for u in U_lR], r_d, np.float64)))
print('V5 exact U rounded, H/solve dbl        ', rel(*closed([u.astype(np.float64) for u in UL], [float(x) for x in r_exact], np.float64)))
def evalR(R, tag):
    U = [sl.solve_triangular(R, p, trans='T') for p in phi]
    print(tag, rel(*closed(U, r_d, np.float64)))
rows = [b[0] for b in full]; A_data = np.vstack(rows)
evalR(stream(rows), 'E2 stream 384 (LAPACK folds)  ')
evalR(stream(rows, 10**9), 'E2b one fold                  ')
evalR(stream(rows, 1), 'E2c fold every structure      ')
nrm = np.linalg.norm(A, axis=1); o = np.argsort(-nrm)
evalR(np.linalg.qr(A[o], mode='r'), 'E3 one-shot sorted rows       ')
evalR(np.linalg.qr(A[::-1], mode='r'), 'E3b one-shot reversed rows    ')
print('row norms: energy rows', [float('%.3g' % np.linalg.norm(b[0][0])) for b in full], 'max force row %.3g' % max(np.linalg.norm(b[0][1:], axis=1).max() for b in full), 'col norms max %.3g min %.3g' % (np.linalg.norm(A, axis=0).max(), np.linalg.norm(A, axis=0).min()))
Rr = RL.astype(np.float64)
U_r = [fsub(Rr.astype(L), p.astype(L)) for p in phi]
print('E4 exact R rounded to double, rest ld', rel(*closed(U_r, r_d, L)))
print('E4b exact R rounded, rest double     ', rel(*closed([sl.solve_triangular(Rr, p, trans='T') for p in phi], r_d, np.float64)))
