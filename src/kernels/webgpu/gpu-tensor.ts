// A tensor that lives on the GPU: a pooled storage buffer, a shape and a dtype — float32, or float16 on devices with
// shader-f16 (the f16 kernels keep storage in f16 and compute in f32). Operations on GpuTensors (ops.ts,
// matmul.ts, the attention hosts) record GPU work and return new GpuTensors without waiting; only read() comes back
// to the host. Intermediate tensors go back to the device's buffer pool with release() — the queue runs commands in
// order, so a buffer released after its last use may be reused by any later command — or, if forgotten, when the
// garbage collector finds them.
import { describeValue, QkvError } from '../../errors.js';
import { checkShape } from '../../tensor/shape.js';
import { f16ToF32 } from '../../tensor/f16.js';
import { acquire, readBackBytes, release, STORAGE, upload } from './buffers.js';

/** Element types a GpuTensor holds. */
export type GpuDType = 'float32' | 'float16';
const BYTES: Record<GpuDType, number> = { float32: 4, float16: 2 };

// A buffer's owner: shared by a tensor and its reshapes. When the last of them is garbage-collected without release(),
// the finalizer gives the buffer back to the pool, so a forgotten GpuTensor does not hold GPU memory forever.
interface Owner { device: GPUDevice; buffer: GPUBuffer; released: boolean }
// (it must not throw: an exception in a finalizer ends the process, with nothing to catch it)
const finalizer = new FinalizationRegistry<Owner>((o) => {
  if (o.released) return;
  o.released = true;
  try { release(o.device, o.buffer); } catch { /* a device already lost: nothing to give back */ }
});

export class GpuTensor {
  readonly device: GPUDevice;
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  private readonly owner: { state: Owner };

  constructor(device: GPUDevice, buffer: GPUBuffer, shape: readonly number[], owner?: { state: Owner }, readonly dtype: GpuDType = 'float32') {
    if (typeof device !== 'object' || device === null || typeof (device as { queue?: unknown }).queue !== 'object') {
      throw new QkvError(`GpuTensor: device must be a GPUDevice, got ${describeValue(device)}`);
    }
    if (typeof buffer !== 'object' || buffer === null || typeof (buffer as { size?: unknown }).size !== 'number') {
      throw new QkvError(`GpuTensor: buffer must be a GPUBuffer, got ${describeValue(buffer)}`);
    }
    checkShape(shape, 'GpuTensor');
    if (dtype !== 'float32' && dtype !== 'float16') {
      throw new QkvError(`GpuTensor: dtype must be float32 or float16, got ${describeValue(dtype)}`);
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (buffer.size < BYTES[dtype] * size) throw new QkvError(`GpuTensor: a buffer of ${buffer.size} bytes cannot hold ${dtype} [${shape.join(', ')}]`);
    this.device = device;
    this.buffer = buffer;
    this.shape = [...shape];
    if (owner) {
      this.owner = owner;
    } else {
      this.owner = { state: { device, buffer, released: false } };
      finalizer.register(this.owner, this.owner.state);
    }
  }

  get size(): number { return this.shape.reduce((a, b) => a * b, 1); }

  /** Copies host data to a new GPU tensor: float32 values, or the bits of float16 ones (a Uint16Array). */
  static upload(device: GPUDevice, data: Float32Array | Uint16Array, shape: readonly number[]): GpuTensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new QkvError(`GpuTensor.upload: ${data.length} values for shape [${shape.join(', ')}] (${n})`);
    return new GpuTensor(device, upload(device, data), shape, undefined, data instanceof Uint16Array ? 'float16' : 'float32');
  }

  /** A GPU tensor with undefined contents (every kernel writing one fills all of it). */
  static empty(device: GPUDevice, shape: readonly number[], dtype: GpuDType = 'float32'): GpuTensor {
    return new GpuTensor(device, acquire(device, BYTES[dtype] * Math.max(2, shape.reduce((a, b) => a * b, 1)), STORAGE()), shape, undefined, dtype);
  }

  /** The same buffer seen with another shape of the same size. */
  reshape(shape: readonly number[]): GpuTensor {
    if (shape.reduce((a, b) => a * b, 1) !== this.size) throw new QkvError(`GpuTensor.reshape: [${this.shape.join(', ')}] → [${shape.join(', ')}] changes the size`);
    return new GpuTensor(this.device, this.buffer, shape, this.owner, this.dtype);
  }

  /** Waits for the GPU and copies the values to the host (float16 widened to float32). */
  async read(): Promise<Float32Array> {
    if (this.owner.state.released) throw new QkvError('GpuTensor.read: the tensor was released');
    const [bytes] = await readBackBytes(this.device, [], [[this.buffer, BYTES[this.dtype] * this.size]]);
    return this.dtype === 'float32' ? new Float32Array(bytes) : Float32Array.from(new Uint16Array(bytes), f16ToF32);
  }

  /** Gives the buffer back to the pool; the tensor (and every reshape of it) must not be used again. */
  release(): void {
    const o = this.owner.state;
    if (o.released) return;
    o.released = true;
    release(this.device, this.buffer);
  }
}
