// The queue between a Peer and its socket: encoded frames wait here while the socket asks us to wait
// (writableNeedDrain) or the handshake is not done, so a big payload never piles up inside the socket and
// `bufferedBytes` tells callers how much is still to go.
import type { Duplex } from 'node:stream';

export class Outbox {
  private readonly frames: Buffer[][] = [];
  private queued = 0;

  constructor(private readonly socket: Duplex) {}

  /** Bytes queued here (not yet handed to the socket). */
  get bytes(): number {
    return this.queued;
  }

  /** Queue one encoded frame (its pieces go to the socket together). */
  push(pieces: Buffer[]): void {
    this.frames.push(pieces);
    for (const piece of pieces) this.queued += piece.length;
  }

  /** Hand queued frames to the socket while `open()` holds and the socket is not asking us to wait. */
  flush(open: () => boolean): void {
    while (open() && this.frames.length > 0 && !this.socket.writableNeedDrain) {
      const pieces = this.frames.shift()!;
      for (const piece of pieces) {
        this.queued -= piece.length;
        this.socket.write(piece);
      }
    }
  }

  /** Drop everything queued (the peer closed). */
  clear(): void {
    this.frames.length = 0;
    this.queued = 0;
  }
}
