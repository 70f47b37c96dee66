// A one-line stage indicator on stderr for the long CLI commands (`acdc fit`):
// the current stage and the seconds it has taken so far, redrawn in place on a
// terminal, one line per finished stage otherwise (`--progress` into a log).

/** Shows which stage a command is in; silent when disabled. */
export class Stages {
  readonly #enabled: boolean;
  readonly #tty: boolean;
  readonly #prefix: string;
  #name: string | null = null;
  #start = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(prefix: string, enabled: boolean) {
    this.#prefix = prefix;
    this.#enabled = enabled;
    this.#tty = process.stderr.isTTY === true;
  }

  #draw(done: boolean): void {
    if (this.#name === null) return;
    const s = ((Date.now() - this.#start) / 1000).toFixed(1);
    const text = `${this.#prefix}: ${this.#name} ${done ? `done in ${s} s` : `${s} s`}`;
    if (this.#tty) process.stderr.write(`\r\x1b[2K${text}${done ? '\n' : ''}`);
    else if (done) process.stderr.write(`${text}\n`);
  }

  /** Ends the current stage (if any) and starts `name`. */
  start(name: string): void {
    if (!this.#enabled) return;
    this.end();
    this.#name = name;
    this.#start = Date.now();
    this.#draw(false);
    if (this.#tty) {
      this.#timer = setInterval(() => this.#draw(false), 250);
      this.#timer.unref();
    }
  }

  /** Ends the current stage. */
  end(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#draw(true);
    this.#name = null;
  }

  /** Clears the line after a failure (the error message follows). */
  abort(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#enabled && this.#tty && this.#name !== null) process.stderr.write('\r\x1b[2K');
    this.#name = null;
  }
}
