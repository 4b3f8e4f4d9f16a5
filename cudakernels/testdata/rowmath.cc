// rowmath.cc: xent_row.cuh compiled for the host (TestRowMath). Reads lines
//   L soft ignored bad m L d Sa zy wy eps k wsum lambda
//   G p ac S sc zf dcap
//   C v c
//   A n parts softcap  then n pairs "raw alpha": acc_add over each of parts
//                      contiguous pieces, acc_merge left to right
//   Y yl T flags ignore               xent_label of a label stored as yl
//   K soft label eps T hasw  then T weights (if hasw) and T probabilities
//                      (if soft)
// and prints, per line, xent_row_loss's S wy ce zl, xent_grad's value,
// xent_cap and xent_dcap, the merged m s d A, xent_label's label ignored bad,
// or xent_coef's a_0 … a_{T−1} then xent_alpha's α_0 … α_{T−1}, with 17
// significant digits.
#define __host__
#define __device__
#define __forceinline__ inline
#include <stdio.h>
#include <stdlib.h>
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
        } else if (op == 'Y') {
            double yl;
            long long T, flags, ignore;
            if (scanf("%lf %lld %lld %lld", &yl, &T, &flags, &ignore) != 4) return 2;
            bool ignored = false, bad = false;
            long long label = xent_label(&yl, 0, T, flags, ignore, ignored, bad);
            printf("%lld %d %d\n", label, (int)ignored, (int)bad);
        } else if (op == 'K') {
            int soft, hasw;
            long long label, T;
            double eps;
            if (scanf("%d %lld %lf %lld %d", &soft, &label, &eps, &T, &hasw) != 5 || T < 1) return 2;
            double *w = (double *)calloc(T, sizeof(double)), *y = (double *)calloc(T, sizeof(double));
            for (long long c = 0; hasw && c < T; c++)
                if (scanf("%lf", &w[c]) != 1) return 2;
            for (long long c = 0; soft && c < T; c++)
                if (scanf("%lf", &y[c]) != 1) return 2;
            const double k = eps / (double)T;
            for (long long c = 0; c < T; c++)
                printf("%s%.17g", c ? " " : "", xent_coef(soft, hasw ? w : 0, y, c, label, eps, k));
            for (long long c = 0; c < T; c++) printf(" %.17g", xent_alpha(soft, hasw ? w : 0, y, c, eps, k));
            printf("\n");
            free(w);
            free(y);
        } else {
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
