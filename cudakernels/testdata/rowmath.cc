// rowmath.cc: xent_row.cuh compiled for the host (TestRowMath). Reads lines
//   L soft ignored bad m L d Sa zy wy eps k wsum lambda
//   G p ac S sc zf dcap
//   C v c
//   A n parts softcap  then n pairs "raw alpha": acc_add over each of parts
//                      contiguous pieces, acc_merge left to right
// and prints, per line, xent_row_loss's S wy ce zl, xent_grad's value, or
// xent_cap and xent_dcap, with 17 significant digits.
#define __host__
#define __device__
#define __forceinline__ inline
#include <stdio.h>
#include <math.h>
#include "../xent_acc.cuh"
#include "../xent_row.cuh"

int main() {
    char op;
    while (scanf(" %c", &op) == 1) {
        if (op == 'L') {
            int soft, ignored, bad;
            double m, L, d, Sa, zy, wy, eps, k, wsum, lambda;
            if (scanf("%d %d %d %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &soft, &ignored, &bad, &m, &L, &d, &Sa, &zy, &wy,
                      &eps, &k, &wsum, &lambda) != 13)
                return 2;
            XentRowLoss r = xent_row_loss(soft, ignored, bad, m, L, d, Sa, zy, wy, eps, k, wsum, lambda);
            printf("%.17g %.17g %.17g %.17g\n", r.S, r.wy, r.ce, r.zl);
        } else if (op == 'G') {
            double p, ac, S, sc, zf, dcap;
            if (scanf("%lf %lf %lf %lf %lf %lf", &p, &ac, &S, &sc, &zf, &dcap) != 6) return 2;
            printf("%.17g\n", xent_grad(p, ac, S, sc, zf, dcap));
        } else if (op == 'C') {
            double v, c;
            if (scanf("%lf %lf", &v, &c) != 2) return 2;
            printf("%.17g %.17g\n", xent_cap(v, c), xent_dcap(v, c));
        } else if (op == 'A') {
            int n, parts;
            double softcap;
            if (scanf("%d %d %lf", &n, &parts, &softcap) != 3 || n < 1 || parts < 1) return 2;
            Acc tot;
            tot.m = -INFINITY; tot.s = 0; tot.d = 0; tot.A = 0;
            int per = (n + parts - 1) / parts;
            for (int p0 = 0; p0 < n; p0 += per) {
                Acc a;
                a.m = -INFINITY; a.s = 0; a.d = 0; a.A = 0;
                for (int i = p0; i < p0 + per && i < n; i++) {
                    double raw, alpha;
                    if (scanf("%lf %lf", &raw, &alpha) != 2) return 2;
                    acc_add(a, raw, xent_cap(raw, softcap), alpha, true, softcap);
                }
                acc_merge(tot, a);
            }
            printf("%.17g %.17g %.17g %.17g\n", tot.m, tot.s, tot.d, tot.A);
        } else {
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
