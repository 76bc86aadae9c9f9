/**
 * Reads cluster.env / sidecar.env the way istio-start.sh does: `set -a; . file; set +a`. The file is
 * bash, not a dotenv file: istioctl single-quotes nearly every value and writes embedded single quotes
 * as `'"'"'`, so a reader has to follow bash's quoting rules to get the same bytes pilot-agent sees.
 *
 * Supported: `KEY=value` and `KEY+=value` (several per line), an optional leading `export`, comments,
 * single quotes, double quotes, `$'...'`, backslash escapes and continuations, values spanning lines
 * inside quotes, concatenated segments, `$VAR`, `${VAR}`, `${VAR:-word}`/`-`/`:+`/`+`, and a leading `~`.
 * Anything that would make bash run code (commands, `$(...)`, backticks, redirections) is an error:
 * the agent never executes the operator's files.
 */
import { ConfigError, type ConfigErrorSource } from './errors.js';

export interface ShellEnvEntry {
  readonly key: string;
  readonly value: string;
  /** 1-based line where the assignment starts. */
  readonly line: number;
}

export interface ShellEnvOptions {
  /** The file's name in messages: the path as the operator gave it, or `cluster.env` for the default. */
  readonly file: string;
  /**
   * Variables visible before the file assigns them: keys of files sourced earlier, then the process
   * environment. Keys the file itself assigns earlier always take precedence, as in bash.
   */
  readonly lookup?: (name: string) => string | undefined;
}

export interface ShellEnvResult {
  /** Every assignment in file order; a key assigned twice appears twice. */
  readonly entries: ShellEnvEntry[];
  /** The final value of each key (the last assignment wins), with its line. */
  readonly vars: Map<string, ShellEnvEntry>;
  readonly errors: ConfigError[];
  readonly warnings: string[];
}

const NAME_START = /[A-Za-z_]/;
const BLANK = new Set([' ', '\t']);
// Characters that end an unquoted word; the first four also start syntax the agent will not run.
const OPERATORS = new Set(['|', '&', '<', '>', '(', ')']);
const WORD_END = new Set([' ', '\t', '\n', ';', ...OPERATORS]);

export function parseShellEnv(text: string, options: ShellEnvOptions): ShellEnvResult {
  return new ShellEnvParser(text, options).parse();
}

class ShellEnvParser {
  readonly #file: string;
  readonly #lookup: (name: string) => string | undefined;
  readonly #src: string;
  #pos = 0;
  #line = 1;
  readonly #entries: ShellEnvEntry[] = [];
  readonly #vars = new Map<string, ShellEnvEntry>();
  readonly #errors: ConfigError[] = [];
  readonly #warnings: string[] = [];
  /** The key being assigned, for messages; undefined between assignments. */
  #key: string | undefined;
  /** Only the first problem of a statement is reported: later ones are usually its echo. */
  #statementFailed = false;
  // Sticky patterns carry a cursor (lastIndex), so each parser owns its own.
  readonly #namePattern = /[A-Za-z_][A-Za-z0-9_]*/y;
  readonly #assignmentPattern = /([A-Za-z_][A-Za-z0-9_]*)(\+?=)/y;

  constructor(text: string, options: ShellEnvOptions) {
    this.#file = options.file;
    this.#lookup = options.lookup ?? (() => undefined);
    let src = text;
    if (src.startsWith('\uFEFF')) {
      src = src.slice(1);
      this.#warn({ line: 1 }, 'byte order mark ignored (bash would treat it as part of the first key)');
    }
    if (src.includes('\r\n')) {
      src = src.replace(/\r\n/g, '\n');
      this.#warn({}, 'Windows (CRLF) line endings ignored (bash would keep the carriage returns in the values)');
    }
    this.#src = src;
  }

  parse(): ShellEnvResult {
    while (this.#pos < this.#src.length) this.#statement();
    return { entries: this.#entries, vars: this.#vars, errors: this.#errors, warnings: this.#warnings };
  }

  // ---- statements ----

  #statement(): void {
    this.#key = undefined;
    this.#statementFailed = false;
    let words = 0;
    let isExport = false;
    let isCommand = false;
    let lastKey: string | undefined;
    for (;;) {
      this.#skipBlanks();
      const c = this.#peek();
      if (c === undefined) return;
      if (c === '\n' || c === ';') {
        if (c === ';' && words === 0) this.#fail(`unexpected ";"`);
        this.#take();
        return;
      }
      if (c === '#') {
        this.#skipComment();
        continue;
      }
      if (OPERATORS.has(c)) {
        this.#fail(`unsupported shell syntax "${c}": only KEY=value assignments are read`);
        this.#skipLine();
        return;
      }
      // After a command word, `A=1` is just an argument to the command.
      const assignment = isCommand ? undefined : this.#matchAssignment();
      if (assignment) {
        const line = this.#line;
        this.#key = assignment.key;
        if (this.#peek() === '(') {
          this.#fail('bash arrays are not supported');
          this.#skipLine();
          return;
        }
        let value = this.#word(true).text;
        if (assignment.op === '+=') value = (this.#get(assignment.key) ?? '') + value;
        const entry: ShellEnvEntry = { key: assignment.key, value, line };
        this.#entries.push(entry);
        this.#vars.set(assignment.key, entry);
        lastKey = assignment.key;
        this.#key = undefined;
        words++;
        continue;
      }
      const wordLine = this.#line;
      const word = this.#word(false);
      if (words === 0 && !isExport && word.text === 'export' && !word.quoted) {
        isExport = true;
        continue;
      }
      if (isExport && /^[A-Za-z_][A-Za-z0-9_]*$/.test(word.text)) {
        continue; // `export NAME`: everything is exported already (set -a)
      }
      if (isExport && word.text.startsWith('-')) {
        this.#fail(`export options are not supported ("export ${word.text}")`, { line: wordLine });
      } else if (lastKey !== undefined) {
        this.#fail(
          `unquoted space in the value: bash would run "${word.text}" as a command; quote the whole value`,
          { line: wordLine, key: lastKey },
        );
      } else {
        this.#fail('not a KEY=value assignment', { line: wordLine, key: word.text });
      }
      isCommand = true;
      words++;
    }
  }

  #matchAssignment(): { key: string; op: string } | undefined {
    this.#assignmentPattern.lastIndex = this.#pos;
    const match = this.#assignmentPattern.exec(this.#src);
    if (!match) return undefined;
    this.#pos += match[0].length;
    return { key: match[1] ?? '', op: match[2] ?? '=' };
  }

  // ---- words ----

  /** One shell word, with quote removal and expansions applied. */
  #word(isAssignmentValue: boolean): { text: string; quoted: boolean } {
    const start = this.#pos;
    let text = '';
    let quoted = false;
    for (;;) {
      const c = this.#peek();
      if (c === undefined || WORD_END.has(c)) break;
      switch (c) {
        case "'":
          quoted = true;
          text += this.#singleQuoted();
          break;
        case '"':
          quoted = true;
          text += this.#doubleQuoted();
          break;
        case '\\':
          this.#take();
          if (this.#peek() === '\n') this.#take(); // line continuation
          else if (this.#peek() !== undefined) text += this.#take();
          break;
        case '$':
          text += this.#dollar(false);
          break;
        case '`':
          this.#commandSubstitutionBackticks();
          break;
        case '~': {
          this.#take();
          const atStart = this.#pos - 1 === start || this.#src[this.#pos - 2] === ':';
          const next = this.#peek();
          const ends = next === undefined || next === '/' || next === ':' || WORD_END.has(next);
          const home = isAssignmentValue && atStart && ends ? this.#get('HOME') : undefined;
          text += home ?? '~';
          break;
        }
        default:
          text += this.#take();
      }
    }
    return { text, quoted };
  }

  #singleQuoted(): string {
    const line = this.#line;
    this.#take();
    const close = this.#src.indexOf("'", this.#pos);
    if (close < 0) {
      this.#fail("unterminated single quote: bash stops reading the file here", { line });
      return this.#takeTo(this.#src.length);
    }
    const text = this.#takeTo(close);
    this.#take();
    return text;
  }

  #doubleQuoted(): string {
    const line = this.#line;
    this.#take();
    let text = '';
    for (;;) {
      const c = this.#peek();
      if (c === undefined) {
        this.#fail('unterminated double quote: bash stops reading the file here', { line });
        return text;
      }
      if (c === '"') {
        this.#take();
        return text;
      }
      if (c === '\\') text += this.#backslashInDoubleQuotes();
      else if (c === '$') text += this.#dollar(true);
      else if (c === '`') this.#commandSubstitutionBackticks();
      else text += this.#take();
    }
  }

  /** Inside double quotes a backslash only escapes $ ` " \ and newline; otherwise it is literal. */
  #backslashInDoubleQuotes(): string {
    this.#take();
    const next = this.#peek();
    if (next === '\n') {
      this.#take();
      return '';
    }
    if (next === '$' || next === '`' || next === '"' || next === '\\') return this.#take();
    return '\\';
  }

  /** `$'...'`: ANSI-C quoting. */
  #ansiC(): string {
    const line = this.#line;
    this.#take();
    this.#take();
    let text = '';
    for (;;) {
      const c = this.#peek();
      if (c === undefined) {
        this.#fail("unterminated $'...' quote: bash stops reading the file here", { line });
        return text;
      }
      this.#take();
      if (c === "'") return text;
      if (c !== '\\') {
        text += c;
        continue;
      }
      text += this.#ansiEscape();
    }
  }

  #ansiEscape(): string {
    const c = this.#peek();
    if (c === undefined) return '\\';
    const simple: Record<string, string> = {
      a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
      '\\': '\\', "'": "'", '"': '"', '?': '?',
    };
    const mapped = simple[c];
    if (mapped !== undefined) {
      this.#take();
      return mapped;
    }
    const numeric = (pattern: RegExp, radix: number): string | undefined => {
      pattern.lastIndex = this.#pos;
      const match = pattern.exec(this.#src);
      if (!match) return undefined;
      this.#takeTo(this.#pos + match[0].length);
      return String.fromCodePoint(parseInt(match[1] ?? '0', radix));
    };
    if (/[0-7]/.test(c)) return numeric(/([0-7]{1,3})/y, 8) ?? '';
    if (c === 'x') return numeric(/x([0-9A-Fa-f]{1,2})/y, 16) ?? this.#literalEscape();
    if (c === 'u') return numeric(/u([0-9A-Fa-f]{1,4})/y, 16) ?? this.#literalEscape();
    if (c === 'U') return numeric(/U([0-9A-Fa-f]{1,8})/y, 16) ?? this.#literalEscape();
    if (c === 'c' && this.#src[this.#pos + 1] !== undefined) {
      this.#take();
      return String.fromCharCode(this.#take().charCodeAt(0) & 0x1f);
    }
    return this.#literalEscape();
  }

  #literalEscape(): string {
    return `\\${this.#take()}`;
  }

  // ---- expansions ----

  #dollar(inDoubleQuotes: boolean): string {
    const next = this.#src[this.#pos + 1];
    if (next === "'" && !inDoubleQuotes) return this.#ansiC();
    if (next === '"' && !inDoubleQuotes) {
      this.#take(); // $"..." (locale translation) reads like "..."
      return this.#doubleQuoted();
    }
    if (next === '{') return this.#braceExpansion(inDoubleQuotes);
    if (next === '(') {
      const arithmetic = this.#src[this.#pos + 2] === '(';
      this.#fail(
        arithmetic
          ? 'arithmetic expansion $((...)) is not supported'
          : 'command substitution $(...) is not supported: the agent does not run commands from env files',
      );
      this.#take();
      this.#skipParens();
      return '';
    }
    if (next !== undefined && NAME_START.test(next)) {
      this.#take();
      const name = this.#name();
      return this.#expand(name);
    }
    if (next !== undefined && /[0-9@*#?$!-]/.test(next)) {
      this.#fail(`special parameter $${next} is not supported`);
      this.#take();
      this.#take();
      return '';
    }
    return this.#take(); // a lone `$` is literal
  }

  #braceExpansion(inDoubleQuotes: boolean): string {
    const line = this.#line;
    this.#take();
    this.#take();
    const name = NAME_START.test(this.#peek() ?? '') ? this.#name() : '';
    if (name === '') {
      this.#fail('unsupported or bad substitution "${"', { line });
      this.#skipBrace();
      return '';
    }
    if (this.#peek() === '}') {
      this.#take();
      return this.#expand(name);
    }
    const op = [':-', ':+', '-', '+'].find((o) => this.#src.startsWith(o, this.#pos));
    if (op === undefined) {
      this.#fail(`unsupported parameter expansion "\${${name}${this.#peek() ?? ''}..." (only \${${name}:-default} and \${${name}:+alt} forms are read)`, { line });
      this.#skipBrace();
      return '';
    }
    this.#takeTo(this.#pos + op.length);
    const word = this.#braceWord(inDoubleQuotes, line);
    const value = this.#get(name);
    const isSet = value !== undefined;
    const isNonEmpty = isSet && value !== '';
    switch (op) {
      case ':-':
        return isNonEmpty ? value : word;
      case '-':
        return isSet ? value : word;
      case ':+':
        return isNonEmpty ? word : '';
      default: // '+'
        return isSet ? word : '';
    }
  }

  /** The `word` of `${NAME:-word}`, up to the closing brace. */
  #braceWord(inDoubleQuotes: boolean, line: number): string {
    let text = '';
    for (;;) {
      const c = this.#peek();
      if (c === undefined) {
        this.#fail('unterminated "${": bash stops reading the file here', { line });
        return text;
      }
      if (c === '}') {
        this.#take();
        return text;
      }
      if (c === '\\') {
        if (inDoubleQuotes) {
          text += this.#backslashInDoubleQuotes();
        } else {
          this.#take();
          if (this.#peek() === '\n') this.#take();
          else if (this.#peek() !== undefined) text += this.#take();
        }
      } else if (c === "'" && !inDoubleQuotes) {
        text += this.#singleQuoted();
      } else if (c === '"') {
        text += this.#doubleQuoted();
      } else if (c === '$') {
        text += this.#dollar(inDoubleQuotes);
      } else if (c === '`') {
        this.#commandSubstitutionBackticks();
      } else {
        text += this.#take();
      }
    }
  }

  #expand(name: string): string {
    const value = this.#get(name);
    if (value === undefined) {
      this.#warn({ line: this.#line, key: this.#key }, `$${name} is not set; it expands to an empty string`);
      return '';
    }
    return value;
  }

  #get(name: string): string | undefined {
    return this.#vars.get(name)?.value ?? this.#lookup(name);
  }

  #commandSubstitutionBackticks(): void {
    this.#fail('command substitution `...` is not supported: the agent does not run commands from env files');
    this.#take();
    while (this.#pos < this.#src.length) {
      const c = this.#take();
      if (c === '\\') this.#take();
      else if (c === '`') return;
    }
  }

  // ---- scanning helpers ----

  #name(): string {
    this.#namePattern.lastIndex = this.#pos;
    const match = this.#namePattern.exec(this.#src);
    const name = match?.[0] ?? '';
    this.#pos += name.length;
    return name;
  }

  #peek(): string | undefined {
    return this.#src[this.#pos];
  }

  #take(): string {
    const c = this.#src[this.#pos] ?? '';
    this.#pos++;
    if (c === '\n') this.#line++;
    return c;
  }

  /** Consumes up to (not including) `end`, counting lines. */
  #takeTo(end: number): string {
    const text = this.#src.slice(this.#pos, end);
    for (const c of text) if (c === '\n') this.#line++;
    this.#pos = end;
    return text;
  }

  #skipBlanks(): void {
    for (;;) {
      const c = this.#peek();
      if (c !== undefined && BLANK.has(c)) this.#take();
      else if (c === '\\' && this.#src[this.#pos + 1] === '\n') this.#takeTo(this.#pos + 2);
      else return;
    }
  }

  #skipComment(): void {
    const end = this.#src.indexOf('\n', this.#pos);
    this.#takeTo(end < 0 ? this.#src.length : end);
  }

  #skipLine(): void {
    const end = this.#src.indexOf('\n', this.#pos);
    this.#takeTo(end < 0 ? this.#src.length : end + 1);
  }

  #skipParens(): void {
    let depth = 0;
    while (this.#pos < this.#src.length) {
      const c = this.#take();
      if (c === '\\') this.#take();
      else if (c === "'") this.#takeTo(Math.max(this.#src.indexOf("'", this.#pos), this.#pos) + 1);
      else if (c === '(') depth++;
      else if (c === ')' && --depth <= 0) return;
    }
  }

  #skipBrace(): void {
    const end = this.#src.indexOf('}', this.#pos);
    this.#takeTo(end < 0 ? this.#src.length : end + 1);
  }

  // ---- reporting ----

  #fail(problem: string, where: { line?: number; key?: string } = {}): void {
    if (this.#statementFailed) return;
    this.#statementFailed = true;
    const source: ConfigErrorSource = { file: this.#file, line: where.line ?? this.#line };
    const key = where.key ?? this.#key;
    if (key !== undefined) source.key = key;
    this.#errors.push(new ConfigError(source, problem));
  }

  #warn(where: { line?: number; key?: string | undefined }, problem: string): void {
    const source: ConfigErrorSource = { file: this.#file };
    if (where.line !== undefined) source.line = where.line;
    if (where.key !== undefined) source.key = where.key;
    this.#warnings.push(new ConfigError(source, problem).message);
  }
}
