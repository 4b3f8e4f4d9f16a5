// rowmath.cc: xent_row.cuh compiled for the host (TestRowMath). Reads lines
//   L soft ignored bad m L d Sa zy wy eps k wsum lambda
//   G p ac S sc zf dcap
//   C v c
// and prints, per line, xent_row_loss's S wy ce zl, xent_grad's value, or
// xent_cap and xent_dcap, with 17 significant digits.
#define __host__
#define __device__
#define __forceinline__ inline
#include <stdio.h>
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
        } else {
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
