"""GridMR's driver for the original GridMR's Python job scripts.

The worker embeds this file and runs it, one process per task:

    python3 driver.py probe   SCRIPT                 -> prints the functions SCRIPT defines
    python3 driver.py map     SCRIPT  < lines        -> "key<TAB>value" lines
    python3 driver.py reduce  SCRIPT  < sorted pairs -> "key<TAB>result" lines
    python3 driver.py process SCRIPT INPUT OUTPUT    -> SCRIPT.process(INPUT, OUTPUT)

or, warm, as a fork server (`python3 driver.py serve`, see serve()): one
process that has imported this file and forks a child per task, which runs
one of the modes above exactly as a fresh interpreter would.

The script's contract is the original's: map_func(line) returns an iterable of
(key, value) pairs for one input line (which still ends in its newline, but for
a file's last line that has none); reduce_func(key, values) returns one
(key, result) pair; keys are grouped as str(key); on the reduce side a value
that parses as an int arrives as int, anything else as str; a reduce input line
without a tab counts as (line, 1). A value may hold tabs (the original took the
key up to the first tab and the rest as the value); a key may not.

In SINGLE mode (`map --objects`) the original ran map and reduce in one
process, so reduce_func got the very objects map_func returned: here floats,
None, booleans, and lists, tuples, dicts, sets, bytes and complex numbers of
such literals travel as their repr and arrive as equal objects again. Other
objects travel as str(), as in DISTRIBUTED mode.

Values that cannot travel as themselves are marked with ESC (see
value_text): ESC "T" and the text with backslash escapes (a tab, or a text
that starts with ESC), ESC "F" and a float's repr, ESC "R" and a literal's
repr. Nothing else starts with ESC, so the reduce side reads them back
unambiguously.

Input is read as UTF-8, ignoring undecodable bytes, with universal newlines,
as the original read its files. When a stream ends well, the driver writes the
line END on stdout: the worker treats output without it as a crashed script
(os._exit, a signal), never as a short result. The data stream is the
driver's alone: while the script runs, sys.stdout is its stderr, so a print()
in map_func shows in the task's log instead of corrupting the output.
"""

import ast
import importlib.util
import io
import itertools
import re
import sys
import traceback
from collections import Counter
from operator import itemgetter

END = "\x00GRIDMR-END"


class ScriptError(Exception):
    """A broken contract: reported without the driver's own frames."""


def load(path):
    spec = importlib.util.spec_from_file_location("gridmr_job", path)
    if spec is None or spec.loader is None:
        raise ScriptError(f"cannot load job script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gridmr_job"] = module
    spec.loader.exec_module(module)
    return module


def function(module, name, signature):
    f = getattr(module, name, None)
    if f is None:
        raise ScriptError(f"the job script does not define {name}{signature}")
    if not callable(f):
        raise ScriptError(f"{name} in the job script is not a function")
    return f


def text(x, what):
    s = str(x)
    if "\t" in s or "\n" in s or "\r" in s:
        raise ScriptError(f"{what} {s!r} contains a tab or a line break")
    return s


def result_text(x):
    # A result may hold tabs, as the original wrote it: readers take the key
    # up to the first tab and the rest as the value. Not a line break.
    s = str(x)
    if "\n" in s or "\r" in s:
        raise ScriptError(f"reduce_func result {s!r:.200} contains a line break")
    return s


ESC = "\x1b"

# Values that travel as their repr in SINGLE mode (floats have their own mark).
LITERALS = frozenset((bool, type(None), list, tuple, dict, set, frozenset, complex, bytes))
PLAIN = frozenset((int, str))


def escaped(s):
    return ESC + "T" + s.replace("\\", "\\\\").replace("\t", "\\t")


def value_text(v, objects):
    """One value as the text that travels to the reduce side (see the top)."""
    t = type(v)
    if objects and t is not int and t is not str:
        if t is float:
            return ESC + "F" + repr(v)
        if t in LITERALS:
            r = repr(v)
            if "\t" not in r and "\n" not in r and "\r" not in r:
                return ESC + "R" + r
    s = str(v)
    if "\n" in s or "\r" in s:
        raise ScriptError(f"map_func value {s!r:.200} contains a line break")
    if "\t" in s or s.startswith(ESC):
        return escaped(s)
    return s


def key_text(k):
    s = str(k)
    if "\t" in s or "\n" in s or "\r" in s:
        raise ScriptError(f"map_func key {s!r:.200} contains a tab or a line break")
    return s


UNESCAPE = re.compile(r"\\(.)")


def unescape(m):
    c = m.group(1)
    return "\t" if c == "t" else c


def marked_value(v):
    """A value that starts with ESC, as map_func returned it."""
    mark, body = v[1:2], v[2:]
    if mark == "T":
        return UNESCAPE.sub(unescape, body)
    if mark == "F":
        return float(body)
    if mark == "R":
        try:
            return ast.literal_eval(body)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return body
    return v


def pair(result, what):
    try:
        k, v = result
    except (TypeError, ValueError):
        raise ScriptError(
            f"{what} must be a (key, value) pair; it gave {result!r:.200}"
        ) from None
    return k, v


def user_call(f, *args):
    # sys.exit inside user code must not pass for a clean end of the task.
    try:
        return f(*args)
    except SystemExit as e:
        raise ScriptError(f"{f.__name__} called sys.exit({e.code!r})") from None


# The real stdout, set by main() before the script is loaded.
DATA = None


def output():
    return io.TextIOWrapper(DATA, encoding="utf-8", newline="\n", write_through=False)


def lines_in():
    # As the original opened its files: UTF-8, undecodable bytes dropped,
    # universal newlines ("\r\n" arrives as "\n").
    return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="ignore")


def grouped_in():
    # The reduce side's input, written by the worker: lines end in "\n" only,
    # and a "\r" inside one is a count marker (see PairWriter).
    return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="ignore", newline="\n")


# The map side counts and writes out its pairs every MAP_BATCH_PAIRS pairs, or
# sooner when the lines they came from reach MAP_BATCH_CHARS (large values).
MAP_BATCH_PAIRS = 1 << 17
MAP_BATCH_CHARS = 16 << 20


def pairs_of(result):
    """map_func's result for one line as a list (a generator runs here)."""
    if result is None:
        raise ScriptError("map_func returned None; it must return (key, value) pairs")
    try:
        items = iter(result)
    except TypeError:
        raise ScriptError(
            f"map_func must return an iterable of (key, value) pairs; it gave {result!r:.200}"
        ) from None
    try:
        return list(items)
    except SystemExit as e:
        raise ScriptError(f"map_func called sys.exit({e.code!r})") from None


def pair_texts(items, objects):
    # The careful path: for items that are not 2-tuples (2-lists, 2-strings...)
    # with the clear error for those that are not pairs at all, for values
    # that hold a tab or are objects of SINGLE mode, and for keys that hold a tab.
    for item in items:
        k, v = pair(item, "each item map_func returns")
        yield key_text(k) + "\t" + value_text(v, objects)


class Lines:
    """The input lines of a batch, and where each one's texts start in it:
    kept (strings and small ints, cheap) so that a batch whose quick check
    failed can be repaired without keeping map_func's results alive."""

    def __init__(self, map_func, objects):
        self.map_func = map_func
        self.objects = objects
        self.lines = []
        self.starts = []
        # Lines whose texts were made the careful way (their ESC are marks).
        self.careful = set()

    def clear(self):
        self.lines.clear()
        self.starts.clear()
        self.careful.clear()

    def repair(self, batch):
        """Makes every text of `batch` one the reduce side reads back right.

        A line break is an error. A value that starts with ESC is escaped. A
        text with more than one tab cannot be split by itself (the key or the
        value holds the tab): map_func runs again on that line, and its pairs
        take the careful way, which escapes the value's tabs and refuses the
        key's. Only such lines (rare) are mapped twice."""
        again = set()
        line = 0
        starts, careful = self.starts, self.careful
        for i, t in enumerate(batch):
            while line + 1 < len(starts) and starts[line + 1] <= i:
                line += 1
            if line in careful:
                continue
            if "\n" in t or "\r" in t:
                raise ScriptError(f"map_func key or value in {t!r:.200} contains a line break")
            if t.count("\t") != 1:
                again.add(line)
            elif ESC in t:
                k, v = t.split("\t")
                if v.startswith(ESC):
                    batch[i] = k + "\t" + escaped(v)
        if not again:
            return
        ends = starts[1:] + [len(batch)]
        fixed = []
        for j, start in enumerate(starts):
            if j in again:
                result = user_call(self.map_func, self.lines[j])
                if type(result) is not list and type(result) is not tuple:
                    result = pairs_of(result)
                fixed.extend(pair_texts(result, self.objects))
            else:
                fixed.extend(batch[start:ends[j]])
        batch[:] = fixed


# A batch with more distinct pairs than COUNT_WORTH of its size was not worth
# counting: the next COUNT_PAUSE batches are written as they are.
COUNT_WORTH = 0.5
COUNT_PAUSE = 8


class PairWriter:
    """Writes batches of "key<TAB>value" texts, equal ones counted.

    A counted batch leaves as "key<TAB>value<TAB>count" lines, one per
    distinct pair, the worker groups them by key. The checks that no key or
    value holds a tab or a line break run on the joined text of the batch: in
    C, like the formatting and the counting, so no bytecode runs per pair.
    """

    def __init__(self, write):
        self.write = write
        self.pause = 0

    def flush(self, batch, lines, careful):
        """Writes `batch`, the texts of the pairs map_func returned for
        `lines.lines`. When the quick check finds a tab, a line break or ESC
        beyond the key's tab, the texts are looked at one by one (see
        Lines.repair)."""
        if not batch:
            return
        if not self.write_checked(batch, careful):
            lines.repair(batch)
            if not self.write_checked(batch, True):
                raise ScriptError("map_func key or value contains a line break")
        batch.clear()
        lines.clear()

    def write_checked(self, batch, careful):
        if self.pause:
            self.pause -= 1
            n, tabs, text = len(batch), 1, "\n".join(batch)
        else:
            counts = Counter(batch)
            if len(counts) > COUNT_WORTH * len(batch):
                self.pause = COUNT_PAUSE
            n, tabs, text = len(counts), 2, "\n".join(map("%s\t%d".__mod__, counts.items()))
        if text.count("\t") != tabs * n or text.count("\n") != n - 1 or "\r" in text:
            return False
        if not careful and ESC in text:
            return False
        self.write(text)
        self.write("\n")
        return True


def plain_values(result):
    # Whether every value of a line's pairs is an int or a str (checked in C).
    try:
        return set(map(type, map(itemgetter(1), result))) <= PLAIN
    except (TypeError, IndexError, KeyError):
        return False


def do_map(module, objects=False):
    # Each pair is formatted by "%s\t%s" (str() of both, as the contract
    # compares keys), in C; PairWriter counts and checks them. In SINGLE mode
    # (objects) a line whose values are not all ints and strs takes the
    # careful way at once.
    map_func = function(module, "map_func", "(line)")
    out = output()
    write = out.write
    text_of = "%s\t%s".__mod__
    batch = []
    extend = batch.extend
    lines = Lines(map_func, objects)
    keep_line, keep_start, careful_line = lines.lines.append, lines.starts.append, lines.careful.add
    pairs = PairWriter(write)
    chars = 0
    # Whether every text of the batch was made the careful way.
    careful = True
    for line in lines_in():
        chars += len(line)
        result = user_call(map_func, line)
        if type(result) is not list and type(result) is not tuple:
            result = pairs_of(result)
        size = len(batch)
        keep_line(line)
        keep_start(size)
        if objects and not plain_values(result):
            extend(pair_texts(result, objects))
            careful_line(len(lines.lines) - 1)
        else:
            try:
                extend(map(text_of, result))
                careful = False
            except TypeError:
                del batch[size:]
                extend(pair_texts(result, objects))
                careful_line(len(lines.lines) - 1)
        if len(batch) >= MAP_BATCH_PAIRS or chars >= MAP_BATCH_CHARS:
            pairs.flush(batch, lines, careful)
            chars, careful = 0, True
    pairs.flush(batch, lines, careful)
    write(END + "\n")
    out.flush()


def parse_value(v):
    if v[:1] == ESC:
        return marked_value(v)
    try:
        return int(v)
    except ValueError:
        return v


def parse_values(texts):
    try:
        return [int(v) for v in texts]
    except ValueError:
        return [parse_value(v) for v in texts]


def parse_counted(texts):
    # "value<CR>count" stands for count equal values (see PairWriter).
    values = []
    for t in texts:
        v, cr, n = t.partition("\r")
        if cr:
            values.extend([parse_value(v)] * int(n))
        else:
            values.append(parse_value(v))
    return values


def records(stream):
    # Each line is "key<TAB>item[<TAB>item...]": GridMR groups a map task's
    # values by key (no key or value holds a tab), an item being a value or
    # "value<CR>count". A line without a tab counts as (line, 1), as the
    # original read its intermediate files.
    for line in stream:
        line = line.rstrip("\n")
        key, tab, items = line.partition("\t")
        if not tab:
            yield line, [1]
        elif "\r" in items:
            yield key, parse_counted(items.split("\t"))
        else:
            yield key, parse_values(items.split("\t"))


def do_reduce(module):
    reduce_func = function(module, "reduce_func", "(key, values)")
    out = output()
    write = out.write
    for key, group in itertools.groupby(records(grouped_in()), key=lambda kv: kv[0]):
        values = [v for _, vs in group for v in vs]
        k, r = pair(user_call(reduce_func, key, values), "reduce_func's result")
        write(text(k, "reduce_func key"))
        write("\t")
        write(result_text(r))
        write("\n")
    write(END + "\n")
    out.flush()


def do_process(module, input_path, output_path):
    process = function(module, "process", "(input_path, output_path)")
    user_call(process, input_path, output_path)
    out = output()
    out.write(END + "\n")
    out.flush()


def do_probe(module):
    names = [n for n in ("map_func", "reduce_func", "process") if callable(getattr(module, n, None))]
    out = output()
    out.write(" ".join(names) + "\n" + END + "\n")
    out.flush()


def main(argv):
    if len(argv) < 3:
        sys.stderr.write("usage: driver.py probe|map|reduce|process SCRIPT [--objects | INPUT OUTPUT]\n")
        return 2
    mode, script = argv[1], argv[2]
    global DATA
    sys.stdout.flush()
    DATA = sys.stdout.buffer
    sys.stdout = sys.stderr
    try:
        module = load(script)
        if mode == "map" and len(argv) == 3:
            do_map(module)
        elif mode == "map" and argv[3:] == ["--objects"]:
            do_map(module, objects=True)
        elif mode == "reduce":
            do_reduce(module)
        elif mode == "process" and len(argv) == 5:
            do_process(module, argv[3], argv[4])
        elif mode == "probe":
            do_probe(module)
        else:
            sys.stderr.write(f"driver.py: unknown mode {mode!r}\n")
            return 2
    except ScriptError as e:
        sys.stderr.write(f"gridmr: {e}\n")
        return 1
    except BrokenPipeError:
        return 1
    except SyntaxError:
        traceback.print_exc(limit=0)
        return 1
    except BaseException:  # noqa: B902 - the user's error, reported whole
        traceback.print_exc()
        return 1
    return 0


# The fork server. The worker holds the other end of the control socket
# (fd 3, SOCK_SEQPACKET). Each request is one message: a JSON object (argv, cwd, env, limits)
# with four descriptors attached, the task's own socket and its stdin,
# stdout and stderr. The server forks; it writes "pid N" on the task socket,
# and "exit STATUS" (the raw wait status) once the child is reaped. The
# child leaves the server's session, waits for the worker's "go" on the task
# socket (by then the worker has put it into the attempt's cgroup), takes the
# descriptors as 0, 1 and 2, the folder, the environment and the limits, and
# runs main(argv). The server never runs user code: every child starts from
# the same clean interpreter, as a fresh process would.
CONTROL_FD = 3


def receive(control):
    """One request and its descriptors (socket.recv_fds is 3.9 and newer)."""
    import array
    import socket

    fds = array.array("i")
    msg, ancillary, _, _ = control.recvmsg(1 << 20, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def dumpable_switch():
    """prctl(PR_SET_DUMPABLE, flag), or a no-op where ctypes cannot reach it.

    The server is not dumpable: a task running as the same user can then
    neither ptrace it nor write its memory through /proc, so it cannot make
    the server start processes outside the task's cgroup. Each child is
    dumpable again before it runs the script, as any fresh process is.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, ImportError):
        return lambda flag: None
    return lambda flag: prctl(4, int(flag), 0, 0, 0)


def serve():
    import json
    import os
    import resource
    import select
    import signal
    import socket

    set_dumpable = dumpable_switch()
    set_dumpable(False)
    control = socket.socket(fileno=CONTROL_FD)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children = {}

    def reap():
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            sock = children.pop(pid, None)
            if sock is not None:
                try:
                    sock.sendall(f"exit {status}\n".encode())
                except OSError:
                    pass
                sock.close()

    def child(request, task, fds):
        try:
            control.close()
            os.close(wake_r)
            os.close(wake_w)
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for other in children.values():
                other.close()
            os.setsid()
            go = b""
            while len(go) < 2:
                got = task.recv(2 - len(go))
                if not got:
                    os._exit(1)  # the worker gave up on this task
                go += got
            if go != b"go":
                os._exit(1)
            task.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            for name, value in request["limits"]:
                resource.setrlimit(getattr(resource, name), (value, value))
            sys.argv = request["argv"]
            # The interpreter's streams, on the task's descriptors now.
            sys.stdin = io.TextIOWrapper(io.open(0, "rb", closefd=False), encoding="utf-8")
            sys.stdout = io.TextIOWrapper(
                io.open(1, "wb", closefd=False), encoding="utf-8", line_buffering=False
            )
            sys.stderr = io.TextIOWrapper(
                io.open(2, "wb", closefd=False), encoding="utf-8", line_buffering=True,
                errors="backslashreplace",
            )
            sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
            set_dumpable(True)
        except BaseException:  # noqa: B902 - a failed set-up is the server's bug
            traceback.print_exc()
            os._exit(70)
        # The child ends as an interpreter's exit would, less the teardown
        # of every module (tens of milliseconds that nothing may rely on;
        # PySpark's workers skip it too): non-daemon threads are joined,
        # atexit handlers run, the streams are flushed, then os._exit.
        try:
            code = main(sys.argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: B902 - as the interpreter would report it
            traceback.print_exc()
            code = 1
        try:
            threading = sys.modules.get("threading")
            if threading is not None:
                threading._shutdown()
            import atexit

            atexit._run_exitfuncs()
            for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
                if stream is not None and not stream.closed:
                    stream.flush()
        except BaseException:  # noqa: B902 - a failing exit hook fails the run
            traceback.print_exc()
            code = code or 120
        os._exit(code & 0xFF if isinstance(code, int) else 1)

    while True:
        try:
            ready, _, _ = select.select([control, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 512)
            reap()
        if control not in ready:
            continue
        try:
            msg, fds = receive(control)
        except InterruptedError:
            continue
        if not msg:
            return 0  # the worker is gone
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        task = socket.socket(fileno=fds[0])
        try:
            request = json.loads(msg)
            pid = os.fork()
        except BaseException as e:  # noqa: B902 - a bad request fails its task only
            try:
                task.sendall(f"error {e!r}\n".encode())
            except OSError:
                pass
            task.close()
            for fd in fds[1:]:
                os.close(fd)
            continue
        if pid == 0:
            child(request, task, fds[1:])  # never returns
        for fd in fds[1:]:
            os.close(fd)
        children[pid] = task
        try:
            task.sendall(f"pid {pid}\n".encode())
        except OSError:
            pass
        reap()


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        sys.exit(serve())
    sys.exit(main(sys.argv))
