"""Merge one same-run Nova-vs-Stratus comparison (scripts/bench-vs-nova).

Reads the JSON records of Nova's harness (scripts/nova/bench_nova.py,
test_a_delete_compute_up in batch and serial mode) and stratus-bench's
reports, writes one combined JSON (machine, timestamp, git commit, each
tool's record unchanged, computed ratios) and prints a markdown table.

Which figures are compared (each tool's own measurement):

* deletes per second: Nova `deletes_per_s` (N / first DELETE to every row
  soft-deleted, DB polled every 20 ms); Stratus `deletes_per_second`
  (N / first DELETE to the last server gone from the list poller).
* DELETE -> 404 at once: Nova `delete_to_db_deleted_at_s` (its GET returns
  404 from that commit on); Stratus `time_to_404_ms` (list poller).
* DELETE -> 404 one at a time: both poll GET /servers/{id} every 5 ms.
* CPU per delete: process CPU time (user+sys) over the delete phase / N.
  Nova: the one process (API, conductor, scheduler, compute, placement,
  fixtures and the test client); Stratus: the `stratus up` process (its
  client's CPU is kept in the JSON as client_cpu_ms_per_delete).
* peak RSS: Nova `ru_maxrss` of its process (the larger of the two runs);
  Stratus VmHWM of `stratus up` over its run.

The "Stratus advantage" is how many times better Stratus is: its
throughput over Nova's, or Nova's latency, CPU or memory over Stratus's.

Usage: vs_nova.py [--nova-batch F] [--nova-serial F] --stratus F
                  [--stratus-big F] [--nova-venv DIR] [--meta K=V ...] --out F
       vs_nova.py --show target/bench/vs-nova.json   (table of an earlier run)
Python 3.11 standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def load(path):
    if not path:
        return None
    with open(path) as f:
        return json.load(f)


def get(d, path):
    for p in path.split('.'):
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def ms(v):
    """seconds -> ms (Nova reports seconds)"""
    return None if v is None else v * 1000.0


def machine():
    info = {'nproc': os.cpu_count(), 'kernel': platform.release(),
            'python': platform.python_version()}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    info['cpu_model'] = line.split(':', 1)[1].strip()
                    break
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    info['mem_total_mib'] = int(line.split()[1]) // 1024
                    break
    except OSError:
        pass
    return info


def git():
    def run(*args):
        try:
            return subprocess.run(['git', '-C', ROOT, *args], check=True,
                                  capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
    commit = run('rev-parse', 'HEAD')
    status = run('status', '--porcelain', '--untracked-files=no')
    return {'commit': commit.strip() if commit else None,
            'branch': (run('rev-parse', '--abbrev-ref', 'HEAD') or '').strip()
            or None,
            'dirty': bool(status.strip()) if status is not None else None}


def nova_versions(venv):
    if not venv:
        return None
    code = ('import importlib.metadata as m, json, sys; print(json.dumps('
            '{p: m.version(p) for p in ("nova", "openstack-placement", '
            '"oslo.messaging", "SQLAlchemy", "eventlet")} | '
            '{"python": sys.version.split()[0]}))')
    try:
        out = subprocess.run([os.path.join(venv, 'bin', 'python'), '-c', code],
                             check=True, capture_output=True, text=True)
        return json.loads(out.stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None


def cmp(nova, stratus, higher_is_better=False):
    if nova is None or stratus is None:
        adv = None
    elif higher_is_better:
        adv = stratus / nova if nova else None
    else:
        adv = nova / stratus if stratus else None
    def r(v):
        return None if v is None else round(v, 2)
    return {'nova': r(nova), 'stratus': r(stratus),
            'stratus_advantage': None if adv is None else round(adv, 1)}


def workload_ratios(d, w, gone_key):
    """Ratios of one Nova workload record `d` against one stratus-bench
    workload `w`; `gone_key` names Nova's delete-to-gone timing."""
    def pair(nova_key, stratus_key):
        return cmp(ms(get(d, nova_key)), get(w, stratus_key))
    return {
        'n': {'nova': d['n'], 'stratus': w['count']},
        'deletes_per_second': cmp(d['deletes_per_s'],
                                  w['deletes_per_second'], True),
        'delete_latency_p50_ms': pair('delete_api_latency_s.p50',
                                      'delete_latency_ms.p50'),
        'delete_latency_p99_ms': pair('delete_api_latency_s.p99',
                                      'delete_latency_ms.p99'),
        'delete_to_404_p50_ms': pair(gone_key + '.p50', 'time_to_404_ms.p50'),
        'delete_to_404_p99_ms': pair(gone_key + '.p99', 'time_to_404_ms.p99'),
        'cpu_ms_per_delete': cmp(d['cpu_ms_per_delete'],
                                 w['cpu_ms_per_delete']),
    }


def compare(nb, ns, st):
    """Ratios of one Stratus report against Nova's batch/serial records."""
    out = {}
    at_once = get(st, 'workloads.delete_all_at_once')
    if nb and at_once:
        # At once, Nova's GET turns 404 when the row's deleted_at is written.
        out['delete_all_at_once'] = workload_ratios(
            nb['delete_up'], at_once, 'delete_to_db_deleted_at_s')
    serial = get(st, 'workloads.delete_one_at_a_time')
    if ns and serial:
        out['delete_one_at_a_time'] = workload_ratios(
            ns['delete_up'], serial, 'delete_to_get_404_s')
    rss = [r['maxrss_mb'] for r in (nb, ns) if r and 'maxrss_mb' in r]
    out['peak_rss_mib'] = cmp(max(rss) if rss else None,
                              st.get('peak_rss_mib'))
    return out


def fmt(v, unit=''):
    if v is None:
        return 'n/a'
    if abs(v) >= 100:
        s = '{:,.0f}'.format(v)
    elif abs(v) >= 10:
        s = '{:.1f}'.format(v)
    else:
        s = '{:.2f}'.format(v)
    return s + unit


def times(v):
    if v is None:
        return 'n/a'
    return ('{:,.0f}×' if v >= 10 else '{:.1f}×').format(v)


def table(ratios, sizes):
    cols = [k for k in ('same_n', 'stratus_big') if k in ratios]
    head = ['workload', 'metric', 'Nova 34']
    for k in cols:
        head += ['Stratus (%s)' % sizes[k], 'Stratus advantage']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    rows = [
        ('delete_all_at_once', 'at once', [
            ('deletes_per_second', 'deletes per second', ''),
            ('delete_latency_p50_ms', 'DELETE latency p50', ' ms'),
            ('delete_latency_p99_ms', 'DELETE latency p99', ' ms'),
            ('delete_to_404_p50_ms', 'DELETE → 404 p50', ' ms'),
            ('delete_to_404_p99_ms', 'DELETE → 404 p99', ' ms'),
            ('cpu_ms_per_delete', 'process CPU per delete', ' ms')]),
        ('delete_one_at_a_time', 'one at a time', [
            ('deletes_per_second', 'deletes per second', ''),
            ('delete_latency_p50_ms', 'DELETE latency p50', ' ms'),
            ('delete_latency_p99_ms', 'DELETE latency p99', ' ms'),
            ('delete_to_404_p50_ms', 'DELETE → 404 p50', ' ms'),
            ('delete_to_404_p99_ms', 'DELETE → 404 p99', ' ms'),
            ('cpu_ms_per_delete', 'process CPU per delete', ' ms')]),
    ]
    for wl, label, metrics in rows:
        first = ratios[cols[0]].get(wl)
        if not first:
            continue
        for i, (key, name, unit) in enumerate(metrics):
            wl_cell = ''
            if i == 0:
                wl_cell = '%s (Nova %d)' % (label, first['n']['nova'])
            cells = [wl_cell, name, fmt(first[key]['nova'], unit)]
            for k in cols:
                r = ratios[k].get(wl)
                if r:
                    cells += [fmt(r[key]['stratus'], unit),
                              times(r[key]['stratus_advantage'])]
                else:
                    cells += ['—', '—']
            lines.append('| ' + ' | '.join(cells) + ' |')
    r0 = ratios[cols[0]]['peak_rss_mib']
    cells = ['whole process', 'peak RSS', fmt(r0['nova'], ' MiB')]
    for k in cols:
        r = ratios[k]['peak_rss_mib']
        cells += [fmt(r['stratus'], ' MiB'),
                  times(r['stratus_advantage'])]
    lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def sizes_of(st):
    s = st.get('settings', {})
    return '%s at once, %s one at a time' % (
        '{:,}'.format(s.get('servers', 0)),
        '{:,}'.format(s.get('serial_servers', 0)))


def show(report):
    """Print the markdown table (and its reading notes) of a combined report."""
    run, ratios = report['run'], report['ratios']
    st = report['stratus']['same_n']
    sizes = {'same_n': sizes_of(st)}
    if report['stratus'].get('big'):
        sizes['stratus_big'] = sizes_of(report['stratus']['big'])
    print('Same run, %s, %s cores (%s); load average %s at start, %s at '
          'end.' % (report['timestamp'][:10], report['machine']['nproc'],
                    report['machine'].get('cpu_model', '?'),
                    run.get('load_average_start', '?'),
                    run.get('load_average_end', '?')))
    print()
    print(table(ratios, sizes))
    print()
    poll = get(st, 'settings.poll_ms')
    print('Stratus advantage: how many times higher its throughput, or lower '
          'its latency, CPU or memory (below 1×: Nova lower). '
          'Nova issues its DELETEs one after another from one client; '
          'Stratus keeps up to %s in flight, so "at once" DELETE latencies are '
          'not like for like. DELETE → 404 at once: Nova from the '
          'soft-delete commit, Stratus from a list poll every %s ms, which '
          'bounds its figures at small N. CPU: Nova counts its whole process '
          '(client included), Stratus `stratus up` only.'
          % (get(st, 'settings.concurrency'), poll))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--nova-batch')
    ap.add_argument('--nova-serial')
    ap.add_argument('--stratus')
    ap.add_argument('--stratus-big')
    ap.add_argument('--nova-venv')
    ap.add_argument('--meta', action='append', default=[],
                    help='KEY=VALUE recorded under "run"')
    ap.add_argument('--out')
    ap.add_argument('--show', metavar='FILE',
                    help='only print the table of an earlier combined report')
    a = ap.parse_args()
    if a.show:
        show(load(a.show))
        return
    if not (a.out and a.stratus):
        ap.error('--out and --stratus are needed (or --show FILE)')
    if not (a.nova_batch or a.nova_serial):
        ap.error('no Nova record given')

    nb, ns = load(a.nova_batch), load(a.nova_serial)
    for name, rec in (('batch', nb), ('serial', ns)):
        if rec is not None and 'delete_up' not in rec:
            sys.exit('vs_nova.py: the Nova %s record has no delete_up '
                     'section (the run did not finish its delete phase)'
                     % name)
    st, big = load(a.stratus), load(a.stratus_big)

    run = {}
    for kv in a.meta:
        k, _, v = kv.partition('=')
        try:
            v = float(v) if '.' in v else int(v)
        except ValueError:
            pass
        run[k] = v

    ratios = {'same_n': compare(nb, ns, st)}
    if big:
        ratios['stratus_big'] = compare(nb, ns, big)
    poll = get(st, 'settings.poll_ms')
    eventlet = [r.get('eventlet_patched') for r in (nb, ns) if r]

    report = {
        'benchmark': 'stratus-vs-nova-delete',
        'timestamp': datetime.datetime.now(
            datetime.timezone.utc).isoformat(timespec='seconds'),
        'machine': machine(),
        'git': git(),
        'run': run,
        'nova_versions': nova_versions(a.nova_venv),
        'notes': [
            'Nova: its in-process functional harness (one Python process, '
            'fake virt driver, %s concurrency), '
            'scripts/nova/bench_nova.py test_a_delete_compute_up.'
            % ('eventlet' if all(eventlet) else 'native threading'
               if not any(eventlet) else 'mixed'),
            'Stratus: stratus-bench --poll-ms %s --gone-poll index (fake '
            'driver, embedded default).' % poll,
            'stratus_advantage: Stratus throughput / Nova throughput, or '
            'Nova latency, CPU, RSS / Stratus latency, CPU, RSS.',
            'DELETE -> 404 at once: Nova from instances.deleted_at (GET is '
            '404 from that commit on); Stratus from its list poller (%s '
            'ms). One at a time: both poll GET /servers/{id} every 5 ms.'
            % poll,
            'CPU per delete: Nova counts its whole process including the '
            'test client; Stratus counts the stratus up process only '
            '(client CPU in client_cpu_ms_per_delete).',
        ],
        'ratios': ratios,
        'nova': {'delete_all_at_once': nb, 'delete_one_at_a_time': ns},
        'stratus': {'same_n': st, 'big': big},
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, 'w') as f:
        json.dump(report, f, indent=1, default=str)
        f.write('\n')
    show(report)


if __name__ == '__main__':
    main()
