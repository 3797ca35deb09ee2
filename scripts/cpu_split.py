#!/usr/bin/env python3
"""Runs a command and reports the CPU seconds it, the PostgreSQL server processes and the
whole machine spent while it ran (from /proc, sampled every 0.2 s so that backends that end
with the command are counted)."""
import os, subprocess, sys, time, threading
HZ = os.sysconf('SC_CLK_TCK')
def proc_cpu(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            parts = f.read().rsplit(')', 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / HZ
    except Exception:
        return None
def postgres_pids():
    pids = []
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                with open(f'/proc/{pid}/comm') as f:
                    if f.read().strip().startswith('postgres'):
                        pids.append(pid)
            except Exception:
                pass
    return pids
def machine():
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) / HZ, (v[3] + v[4]) / HZ
first = {pid: proc_cpu(pid) or 0.0 for pid in postgres_pids()}
latest = dict(first)
done = False
def sample():
    while not done:
        for pid in postgres_pids():
            c = proc_cpu(pid)
            if c is not None:
                first.setdefault(pid, 0.0)
                latest[pid] = c
        time.sleep(0.2)
t = threading.Thread(target=sample); t.start()
(t0, i0) = machine(); w0 = time.time()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
out = child.stdout.read()
_, status, usage = os.wait4(child.pid, 0)
w1 = time.time(); (t1, i1) = machine()
done = True; t.join()
own = usage.ru_utime + usage.ru_stime
pg = sum(latest[p] - first.get(p, 0.0) for p in latest)
busy = (t1 - t0) - (i1 - i0)
print(out.strip())
total = max(t1 - t0, 1e-9)
print(f"cpu: wall {w1-w0:.1f} s; machine busy {busy:.1f} of {t1-t0:.1f} cpu-s ({100*busy/total:.0f} %); "
      f"command {own:.1f} cpu-s; postgres server {pg:.1f} cpu-s")
sys.exit(os.waitstatus_to_exitcode(status))
