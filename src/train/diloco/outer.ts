// DiLoCo's outer optimiser: SGD with Nesterov momentum on the aggregated pseudo-gradient, as PyTorch's
// SGD(nesterov=True, dampening=0) computes it and as Douillard et al. 2023 use it (outer lr 0.7, momentum 0.9):
//
//   buf   <- momentum * buf + g          (buf starts at g on the first step)
//   step  <- g + momentum * buf
//   theta <- theta - lr * step
//
// With lr = 1 and momentum = 0 the outer step is plain averaging of the participants' models (FedAvg).
import type { TensorMap } from '../params.ts';
import type { Delta } from './delta.ts';

export interface OuterOptions {
  /** Outer learning rate (DiLoCo: 0.7). */
  lr: number;
  /** Nesterov momentum (DiLoCo: 0.9). */
  momentum: number;
}

/** The paper's outer optimiser settings. */
export const DILOCO_OUTER: OuterOptions = { lr: 0.7, momentum: 0.9 };

export class NesterovOuter {
  readonly options: OuterOptions;
  /** Momentum buffers by tensor name (absent before the first step). */
  private buf: Map<string, Float32Array> | undefined;

  constructor(options: OuterOptions = DILOCO_OUTER) {
    if (!(options.lr > 0) || !(options.momentum >= 0 && options.momentum < 1)) {
      throw new Error(`outer optimiser: expected lr > 0 and 0 <= momentum < 1, got lr ${options.lr}, momentum ${options.momentum}`);
    }
    this.options = options;
  }

  /** Apply one outer step to `params` in place with the aggregated pseudo-gradient `g`. */
  step(params: TensorMap, g: Delta): void {
    const { lr, momentum } = this.options;
    const first = this.buf === undefined;
    const buf = (this.buf ??= new Map());
    for (const [name, theta] of params) {
      const grad = g.get(name);
      if (!grad || grad.length !== theta.length) throw new Error(`outer step: pseudo-gradient of ${name} missing or of the wrong size`);
      let b = buf.get(name);
      if (!b) {
        b = new Float32Array(theta.length);
        buf.set(name, b);
      }
      for (let i = 0; i < theta.length; i++) {
        const gi = grad[i]!;
        const bi = first ? gi : momentum * b[i]! + gi;
        b[i] = bi;
        theta[i] = theta[i]! - lr * (gi + momentum * bi);
      }
    }
  }

  /** The momentum buffers (for a checkpoint); undefined before the first step. */
  getState(): Map<string, Float32Array> | undefined {
    return this.buf && new Map([...this.buf].map(([k, v]) => [k, Float32Array.from(v)]));
  }

  setState(buf: Map<string, Float32Array> | undefined): void {
    this.buf = buf && new Map([...buf].map(([k, v]) => [k, Float32Array.from(v)]));
  }
}
