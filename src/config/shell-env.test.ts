import assert from 'node:assert/strict';
import { parseShellEnv, type ShellEnvResult } from './shell-env.js';

function parse(text: string, env: Record<string, string> = {}): ShellEnvResult {
  return parseShellEnv(text, { file: 'cluster.env', lookup: (k) => env[k] });
}

/** The final values, asserting the file parsed without errors. */
function values(text: string, env: Record<string, string> = {}): Record<string, string> {
  const result = parse(text, env);
  assert.deepEqual(
    result.errors.map((e) => e.message),
    [],
  );
  return Object.fromEntries([...result.vars].map(([k, v]) => [k, v.value]));
}

function errors(text: string, env: Record<string, string> = {}): string[] {
  return parse(text, env).errors.map((e) => e.message);
}

describe('parseShellEnv', () => {
  describe('reads values as bash does', () => {
    it('reads plain KEY=value lines', () => {
      assert.deepEqual(values('A=1\nB=two\n'), { A: '1', B: 'two' });
    });

    it('skips comments and blank lines', () => {
      assert.deepEqual(values('# header\n\n  # indented comment\nA=1 # trailing comment\n\nB=2\n'), { A: '1', B: '2' });
    });

    it('keeps a # that does not start a word', () => {
      assert.deepEqual(values('A=b#c\nB=#d\nC=\'x\'#y\n'), { A: 'b#c', B: '#d', C: 'x#y' });
    });

    it('accepts an optional export and several assignments per line', () => {
      assert.deepEqual(values('export A=1\nexport B=2 C=3\nD=4 E=5\nexport D\n'), { A: '1', B: '2', C: '3', D: '4', E: '5' });
    });

    it('reads empty values: KEY=, KEY=\'\' and KEY=""', () => {
      assert.deepEqual(values("A=\nB=''\nC=\"\"\nTRUST_DOMAIN=''\n"), { A: '', B: '', C: '', TRUST_DOMAIN: '' });
    });

    it('keeps single-quoted text literal', () => {
      assert.deepEqual(values("A='$HOME \\n \"x\" `y` $(z)'\n", { HOME: '/root' }), { A: '$HOME \\n "x" `y` $(z)' });
    });

    it('reads the JSON istioctl writes in single quotes', () => {
      const json = '{"app":"nginx","service.istio.io/canonical-name":"nginx"}';
      assert.deepEqual(values(`ISTIO_METAJSON_LABELS='${json}'\n`), { ISTIO_METAJSON_LABELS: json });
    });

    it('handles escapes inside double quotes', () => {
      assert.deepEqual(values('A="say \\"hi\\" \\\\ \\$HOME \\` \\n \\a"\n', { HOME: '/root' }), { A: 'say "hi" \\ $HOME ` \\n \\a' });
    });

    it('joins a backslash-newline inside double quotes', () => {
      assert.deepEqual(values('A="one \\\ntwo"\n'), { A: 'one two' });
    });

    it('handles backslash escapes and continuations outside quotes', () => {
      assert.deepEqual(values('A=a\\ b\\$c\\\\d\nB=one\\\ntwo\n'), { A: 'a b$c\\d', B: 'onetwo' });
    });

    it('concatenates adjacent segments, including istioctl\'s \'"\'"\' for embedded single quotes', () => {
      assert.deepEqual(values(`A='a'"b"c'd'\nB='it'"'"'s'\nC='{"owner":"platform'"'"'s team"}'\n`), {
        A: 'abcd',
        B: "it's",
        C: `{"owner":"platform's team"}`,
      });
    });

    it('reads values that span lines inside quotes and keeps line numbers right', () => {
      const result = parse("A='line1\nline2'\nB=\"x\ny\"\nC=3\n");
      assert.deepEqual(result.errors, []);
      assert.equal(result.vars.get('A')?.value, 'line1\nline2');
      assert.equal(result.vars.get('B')?.value, 'x\ny');
      assert.deepEqual(
        [...result.vars.values()].map((e) => [e.key, e.line]),
        [
          ['A', 1],
          ['B', 3],
          ['C', 5],
        ],
      );
    });

    it('expands $VAR and ${VAR} from earlier keys, then the process env', () => {
      const env = { HOME: '/home/vm', NS: 'from-env' };
      assert.deepEqual(values('NS=istio-demo\nA=$NS/x\nB="${NS}-svc"\nC=$HOME\nD=\'$NS\'\n', env), {
        NS: 'istio-demo',
        A: 'istio-demo/x',
        B: 'istio-demo-svc',
        C: '/home/vm',
        D: '$NS',
      });
    });

    it('expands an unset variable to empty, with a warning', () => {
      const result = parse('A=x${MISSING}y\n');
      assert.equal(result.vars.get('A')?.value, 'xy');
      assert.match(result.warnings.join('\n'), /cluster\.env:1: A: \$MISSING is not set/);
    });

    it('supports ${VAR:-default}, ${VAR-default}, ${VAR:+alt} and ${VAR+alt}', () => {
      assert.deepEqual(values('E=\nA=${UNSET:-d1}\nB=${E:-d2}\nC=${E-d3}\nD=${E:+alt}\nF=${E+alt}\nG="${UNSET:-"q u"}"\n'), {
        E: '',
        A: 'd1',
        B: 'd2',
        C: '',
        D: '',
        F: 'alt',
        G: 'q u',
      });
    });

    it('reads $\'...\' ANSI-C strings', () => {
      assert.deepEqual(values("A=$'tab\\there\\nnew \\'q\\' \\x41\\101'\n"), { A: "tab\there\nnew 'q' AA" });
    });

    it('keeps a lone $ literal', () => {
      assert.deepEqual(values('A=cost$\nB="5$ "\n'), { A: 'cost$', B: '5$ ' });
    });

    it('expands a leading ~ to HOME', () => {
      assert.deepEqual(values('A=~/certs\nB=a:~/b\nC="~/x"\nD=x~\n', { HOME: '/home/vm' }), {
        A: '/home/vm/certs',
        B: 'a:/home/vm/b',
        C: '~/x',
        D: 'x~',
      });
    });

    it('appends with +=', () => {
      assert.deepEqual(values('A=one\nA+=,two\n'), { A: 'one,two' });
    });

    it('lets the last assignment win and remembers its line', () => {
      const result = parse('A=1\nB=2\nA=3\n');
      assert.equal(result.vars.get('A')?.value, '3');
      assert.equal(result.vars.get('A')?.line, 3);
      assert.equal(result.entries.length, 3);
    });

    it('ignores CRLF line endings with a warning', () => {
      const result = parse("A='true'\r\nB=2\r\n");
      assert.equal(result.vars.get('A')?.value, 'true');
      assert.match(result.warnings.join('\n'), /CRLF/);
    });
  });

  describe('rejects what it will not run', () => {
    it('rejects command substitution $(...) and backticks, naming file, line and key', () => {
      assert.deepEqual(errors('A=1\nB=$(hostname)\nC=`id -u`\nD="x$(y)"\n'), [
        'cluster.env:2: B: command substitution $(...) is not supported: the agent does not run commands from env files',
        'cluster.env:3: C: command substitution `...` is not supported: the agent does not run commands from env files',
        'cluster.env:4: D: command substitution $(...) is not supported: the agent does not run commands from env files',
      ]);
    });

    it('rejects an unterminated single quote at the line it opens', () => {
      assert.deepEqual(errors("A=1\nB='open\nC=2\n"), ['cluster.env:2: B: unterminated single quote: bash stops reading the file here']);
    });

    it('rejects an unterminated double quote', () => {
      assert.deepEqual(errors('A="open\n'), ['cluster.env:1: A: unterminated double quote: bash stops reading the file here']);
    });

    it('rejects lines that are not assignments', () => {
      assert.deepEqual(errors('A=1\necho hello\nB 2\n-x=1\n'), [
        'cluster.env:2: echo: not a KEY=value assignment',
        'cluster.env:3: B: not a KEY=value assignment',
        'cluster.env:4: -x=1: not a KEY=value assignment',
      ]);
    });

    it('rejects an unquoted space in a value, which bash would run as a command', () => {
      assert.deepEqual(errors('A=two words\n'), [
        'cluster.env:1: A: unquoted space in the value: bash would run "words" as a command; quote the whole value',
      ]);
    });

    it('rejects pipes, redirections and subshells', () => {
      assert.equal(errors('A=1 | tee x\n').length, 1);
      assert.equal(errors('A=1 > out\n').length, 1);
      assert.match(errors('(A=1)\n')[0] ?? '', /unsupported shell syntax/);
      assert.match(errors('A=(1 2)\n')[0] ?? '', /arrays are not supported/);
    });

    it('rejects unsupported expansions', () => {
      assert.match(errors('A=${#B}\n')[0] ?? '', /cluster\.env:1: A: unsupported/);
      assert.match(errors('A=${B%x}\n')[0] ?? '', /unsupported parameter expansion/);
      assert.match(errors('A=$1\n')[0] ?? '', /special parameter \$1/);
      assert.match(errors('A=$((1+2))\n')[0] ?? '', /arithmetic/);
    });

    it('does not treat the arguments of a command as assignments', () => {
      const result = parse('echo A=1\n');
      assert.equal(result.errors.length, 1);
      assert.equal(result.vars.has('A'), false);
    });

    it('keeps reading after an error, reporting every bad line', () => {
      const result = parse('A=1\nbad line\nB=2\nC=$(x)\nD=4\n');
      assert.equal(result.errors.length, 2);
      assert.deepEqual(
        [...result.vars.keys()].filter((k) => k !== 'C'),
        ['A', 'B', 'D'],
      );
    });
  });
});
