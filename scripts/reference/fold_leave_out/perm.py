exec(open('./diag.py').read().split("ex_e, ex_v = closed([sl")[0])
UL = [fsub(RL, L(1) * p.astype(L)) for p in phi]
ex_e, ex_v = closed(UL, r_exact, L)
def rel(e, v): return max(max(abs(L(e[j]) - ex_e[j]) / abs(ex_e[j]) for j in range(len(cu))), max(abs(L(v[j]) - ex_v[j]) / ex_v[j] for j in range(len(cu))))
R = np.linalg.qr(A, mode='r'); th = sl.solve_triangular(R, (np.linalg.qr(A)[0].T @ bb))
r_d = [sig[j] * (full[k][0][0] @ th - full[k][1][0]) for j, k in enumerate(cu)]
rows = [b[0] for b in full]
rng = np.random.default_rng(1)
res = {1: [], 192: [], 384: [], 10**9: []}
for t in range(12):
    o = rng.permutation(len(rows))
    for blk in res:
        Rb = stream([rows[i] for i in o], blk)
        U = [sl.solve_triangular(Rb, p, trans='T') for p in phi]
        res[blk].append(rel(*closed(U, r_d, np.float64)))
for blk, v in res.items():
    v = np.array(v, dtype=float); print('block', blk, 'median %.2e max %.2e min %.2e' % (np.median(v), v.max(), v.min()))
for name, mk in (('energy rows last', lambda o: [rows[i][1:] for i in o] + [np.vstack([rows[i][:1] for i in o])]),
                 ('energy rows first', lambda o: [np.vstack([rows[i][:1] for i in o])] + [rows[i][1:] for i in o])):
    for blk in (384, 10**9):
        v = []
        rng = np.random.default_rng(1)
        for t in range(12):
            o = rng.permutation(len(rows))
            Rb = stream(mk(o), blk)
            U = [sl.solve_triangular(Rb, p, trans='T') for p in phi]
            v.append(rel(*closed(U, r_d, np.float64)))
        v = np.array(v, dtype=float); print(name, blk, 'median %.2e max %.2e min %.2e' % (np.median(v), v.max(), v.min()))
