/**
 * A small Gaussian-process regressor for the search: Matérn 5/2 kernel with one lengthscale per
 * dimension, categorical dimensions compared by equality, hyperparameters picked by maximising
 * the log marginal likelihood over a fixed ladder (no gradients, so it is deterministic and cheap
 * for the few dozen points a tuning study has). Inputs are already encoded: ordinal coordinates
 * in [0, 1], categorical coordinates as category numbers.
 */

/** GpPrediction is the posterior at one point, in the units of the training targets. */
export interface GpPrediction {
  mean: number;
  variance: number;
}

/** GpModel is a fitted process. */
export interface GpModel {
  predict(x: readonly number[]): GpPrediction;
  /** lengthscales and noise chosen by the fit, for logs and tests (noise relative to the targets' variance). */
  readonly lengthscales: readonly number[];
  readonly noise: number;
  /** noiseVariance is the fitted measurement noise in the units of the targets (squared). */
  readonly noiseVariance: number;
}

const LENGTHSCALES = [0.04, 0.08, 0.15, 0.25, 0.4, 0.65, 1, 1.6, 3];
const NOISES = [1e-6, 1e-3, 1e-2, 0.05, 0.2];
const SQRT5 = Math.sqrt(5);

function kernel(
  a: readonly number[],
  b: readonly number[],
  ls: readonly number[],
  cat: readonly boolean[],
): number {
  let r2 = 0;
  for (let d = 0; d < ls.length; d++) {
    const diff = cat[d] ? (a[d] === b[d] ? 0 : 1) : (a[d] ?? 0) - (b[d] ?? 0);
    const l = ls[d] ?? 1;
    r2 += (diff * diff) / (l * l);
  }
  const r = SQRT5 * Math.sqrt(r2);
  return (1 + r + (r * r) / 3) * Math.exp(-r);
}

/** cholesky factors a symmetric positive-definite matrix (row-major, n*n) in place of a new array. */
function cholesky(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * n + j] ?? 0;
      for (let k = 0; k < j; k++) sum -= (l[i * n + k] ?? 0) * (l[j * n + k] ?? 0);
      if (i === j) {
        if (sum <= 0) return undefined;
        l[i * n + i] = Math.sqrt(sum);
      } else {
        l[i * n + j] = sum / (l[j * n + j] ?? 1);
      }
    }
  }
  return l;
}

/** forward solves L y = b. */
function forward(l: Float64Array, n: number, b: ArrayLike<number>): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sum = b[i] ?? 0;
    for (let k = 0; k < i; k++) sum -= (l[i * n + k] ?? 0) * (y[k] ?? 0);
    y[i] = sum / (l[i * n + i] ?? 1);
  }
  return y;
}

/** backward solves L^T x = y. */
function backward(l: Float64Array, n: number, y: Float64Array): Float64Array {
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let sum = y[i] ?? 0;
    for (let k = i + 1; k < n; k++) sum -= (l[k * n + i] ?? 0) * (x[k] ?? 0);
    x[i] = sum / (l[i * n + i] ?? 1);
  }
  return x;
}

interface Fitted {
  l: Float64Array;
  alpha: Float64Array;
  lml: number;
}

function factor(
  xs: readonly number[][],
  ys: Float64Array,
  ls: readonly number[],
  noise: number,
  cat: readonly boolean[],
): Fitted | undefined {
  const n = xs.length;
  const k = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const v = kernel(xs[i] ?? [], xs[j] ?? [], ls, cat) + (i === j ? noise : 0);
      k[i * n + j] = v;
      k[j * n + i] = v;
    }
  }
  const l = cholesky(k, n);
  if (!l) return undefined;
  const alpha = backward(l, n, forward(l, n, ys));
  let fit = 0;
  let logDet = 0;
  for (let i = 0; i < n; i++) {
    fit += (ys[i] ?? 0) * (alpha[i] ?? 0);
    logDet += Math.log(l[i * n + i] ?? 1);
  }
  // A weak log-normal prior on each lengthscale keeps a handful of points from picking a
  // lengthscale so short that the model says nothing between them.
  const prior = ls.reduce((s, x) => s - 0.5 * Math.log(x / 0.4) ** 2, 0);
  return { l, alpha, lml: -0.5 * fit - logDet + prior };
}

/** GpOptions change a fit's defaults. */
export interface GpOptions {
  /**
   * priorMean is what the process predicts far from every point, in the units of the targets.
   * @default the targets' mean
   */
  priorMean?: number;
}

/**
 * fitGp fits a process to points `xs` (encoded) and targets `ys`. `categorical[d]` marks the
 * dimensions compared by equality. Targets are standardised inside; predictions come back in the
 * original units.
 */
export function fitGp(
  xs: readonly number[][],
  ys: readonly number[],
  categorical: readonly boolean[],
  options: GpOptions = {},
): GpModel {
  const n = ys.length;
  const average = ys.reduce((s, y) => s + y, 0) / Math.max(1, n);
  const mean = options.priorMean ?? average;
  const sd = Math.sqrt(ys.reduce((s, y) => s + (y - average) ** 2, 0) / Math.max(1, n)) || 1;
  const z = Float64Array.from(ys, (y) => (y - mean) / sd);
  const dims = categorical.length;

  let best: { fit: Fitted; ls: number[]; noise: number } | undefined;
  const consider = (ls: number[], noise: number): void => {
    const fit = factor(xs, z, ls, noise, categorical);
    if (fit && (!best || fit.lml > best.fit.lml)) best = { fit, ls, noise };
  };
  for (const noise of NOISES) for (const l of LENGTHSCALES) consider(new Array<number>(dims).fill(l), noise);
  // Coordinate ascent from the best shared lengthscale: two sweeps find most of the ARD gain.
  for (let sweep = 0; sweep < 2 && best; sweep++) {
    for (let d = 0; d < dims; d++) {
      const start: { ls: number[]; noise: number } = best;
      for (const l of LENGTHSCALES) {
        if (l === start.ls[d]) continue;
        const ls = [...start.ls];
        ls[d] = l;
        consider(ls, start.noise);
      }
    }
    const start: { ls: number[]; noise: number } = best;
    for (const noise of NOISES) if (noise !== start.noise) consider(start.ls, noise);
  }
  if (!best) throw new Error("gaussian process: no hyperparameters gave a positive-definite kernel");
  const { fit, ls, noise } = best;
  return {
    lengthscales: ls,
    noise,
    noiseVariance: noise * sd * sd,
    predict(x) {
      const ks = new Float64Array(n);
      for (let i = 0; i < n; i++) ks[i] = kernel(x, xs[i] ?? [], ls, categorical);
      let mu = 0;
      for (let i = 0; i < n; i++) mu += (ks[i] ?? 0) * (fit.alpha[i] ?? 0);
      const v = forward(fit.l, n, ks);
      let reduce = 0;
      for (let i = 0; i < n; i++) reduce += (v[i] ?? 0) ** 2;
      const variance = Math.max(1e-12, 1 - reduce);
      return { mean: mean + mu * sd, variance: variance * sd * sd };
    },
  };
}

/** normalCdf is Φ(z) (Abramowitz & Stegun 7.1.26 via erf, error below 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** normalPdf is φ(z). */
export function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
}
