# Copied from the team's Nova peer baseline (shared/peers/nova/bench_nova.py,
# written by this project for benchmarking; it is not Nova's code). It is a
# testtools test module that runs Nova 34.0.0's own in-process functional
# harness (API, conductor, scheduler, one compute on fake.FakeDriver,
# placement, in-memory SQLite, the fake oslo.messaging transport), boots N
# servers, deletes them and writes one JSON record per run. Used by
# scripts/bench-vs-nova, which installs Nova into a private venv (pinned by
# scripts/nova/constraints.txt) and runs test_a_delete_compute_up in batch
# and serial mode. Unchanged from the shared copy below this header.
"""Delete-path benchmark for OpenStack Nova 34.0.0 on Nova's own in-process
functional-test harness (nova.tests.functional.integrated_helpers).

All of nova-api (WSGI app via wsgi-intercept), conductor, scheduler, one
nova-compute (virt driver fake.FakeDriver), placement (PlacementFixture),
and fake neutron / glance / cinder run in ONE Python process, talking over
oslo.messaging's in-memory 'fake' transport, with in-memory sqlite databases.

Each test method is one benchmark run; it writes a JSON record to
$BENCH_OUT_DIR/<test>-<pid>-<ts>.json.  Parameters come from env vars:

  BENCH_N               number of servers (default 50)
  BENCH_MODE            'batch' (issue all DELETEs back-to-back) or
                        'serial' (DELETE one, poll GET until 404, next)
  BENCH_CAST_AS_CALL    '1' to make RPC casts synchronous (harness default);
                        default '0' = casts are async like a real deployment
  BENCH_LOG_DEBUG       '1' keeps the harness default of formatting every
                        DEBUG log record; default '0' sets root logger to INFO
                        (closer to a production service with debug=False)
  BENCH_REPORT_INTERVAL / BENCH_SERVICE_DOWN_TIME  override nova.conf
  BENCH_OUT_DIR         where JSON results go
"""

import datetime
import json
import logging
import os
import resource
import statistics
import time

# Importing nova.tests applies nova's monkey patching policy (eventlet unless
# OS_NOVA_DISABLE_EVENTLET_PATCHING=1).
from nova.tests.functional import integrated_helpers  # noqa: E402
from nova.tests.functional.api import client as api_client  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import monkey_patch  # noqa: E402
from nova import objects  # noqa: E402
from nova.db.main import api as main_db_api  # noqa: E402
from nova.db.main import models as main_models  # noqa: E402
from nova.tests.fixtures import cinder as cinder_fixture  # noqa: E402

import psutil  # noqa: E402

N = int(os.environ.get('BENCH_N', '50'))
MODE = os.environ.get('BENCH_MODE', 'batch')
OUT_DIR = os.environ.get('BENCH_OUT_DIR', '/tmp/nova_bench')
POLL = float(os.environ.get('BENCH_POLL', '0.005'))
CAST_AS_CALL = os.environ.get('BENCH_CAST_AS_CALL', '0') == '1'
LOG_DEBUG = os.environ.get('BENCH_LOG_DEBUG', '0') == '1'
REPORT_INTERVAL = os.environ.get('BENCH_REPORT_INTERVAL')
SERVICE_DOWN_TIME = os.environ.get('BENCH_SERVICE_DOWN_TIME')


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb():
    return psutil.Process().memory_info().rss / (1024.0 * 1024.0)


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)


def summarize(values):
    if not values:
        return None
    return {
        'n': len(values),
        'p50': pct(values, 50), 'p95': pct(values, 95), 'p99': pct(values, 99),
        'min': min(values), 'max': max(values),
        'mean': statistics.fmean(values),
    }


def utcnow():
    # naive UTC, same convention as nova's DB timestamps
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class _Phase(object):
    def __init__(self, rec, name):
        self.rec = rec
        self.name = name

    def __enter__(self):
        self.t0 = time.monotonic()
        self.c0 = cpu_s()
        return self

    def __exit__(self, *a):
        self.rec.setdefault('phases', {})[self.name] = {
            'wall_s': time.monotonic() - self.t0,
            'cpu_s': cpu_s() - self.c0,
            'rss_mb_end': rss_mb(),
        }


class NovaDeleteBench(integrated_helpers._IntegratedTestBase):
    ADMIN_API = True
    microversion = 'latest'
    CAST_AS_CALL = CAST_AS_CALL
    # keep everything else of the harness (sqlite, fake rpc, fixtures)

    def setUp(self):
        self.rec = {
            'nova_harness': 'nova.tests.functional.integrated_helpers.'
                            '_IntegratedTestBase (in-process)',
            'db': 'sqlite in-memory (harness default)',
            'rpc': "oslo.messaging 'fake' in-memory transport",
            'virt_driver': 'fake.FakeDriver',
            'cast_as_call': CAST_AS_CALL,
            'eventlet_patched': None,
            'log_debug_formatting': LOG_DEBUG,
            'N': N, 'mode': MODE,
            'pid': os.getpid(),
        }
        t0 = time.monotonic()
        super().setUp()
        self.rec['eventlet_patched'] = monkey_patch.is_patched()
        if not LOG_DEBUG:
            logging.getLogger().setLevel(logging.INFO)
        self.rec['setup_wall_s'] = time.monotonic() - t0
        self.ctxt = nova_context.get_admin_context()
        self.addCleanup(self._write)

    def _setup_services(self):
        # Flags applied before services start so that they see them.
        if REPORT_INTERVAL:
            self.flags(report_interval=int(REPORT_INTERVAL))
        if SERVICE_DOWN_TIME:
            self.flags(service_down_time=int(SERVICE_DOWN_TIME))
        self.flags(compute_driver='fake.FakeDriver')
        # default quota is 10 instances / 20 cores: lift it for N=50/200
        self.flags(instances=-1, cores=-1, ram=-1, group='quota')
        # the wheel installs api-paste.ini under <venv>/etc/nova/
        import sys
        self.flags(api_paste_config=os.path.join(
            sys.prefix, 'etc', 'nova', 'api-paste.ini'), group='wsgi')
        super()._setup_services()

    def _setup_compute_service(self):
        return self._start_compute('compute1')

    # ------------------------------------------------------------------ utils
    def _write(self):
        self.rec['maxrss_mb'] = maxrss_mb()
        self.rec['cpu_total_s'] = cpu_s()
        os.makedirs(OUT_DIR, exist_ok=True)
        name = '%s-%s-N%s-%s-%d-%d.json' % (
            self._testMethodName, 'cast' if CAST_AS_CALL else 'async', N,
            MODE, os.getpid(), int(time.time()))
        with open(os.path.join(OUT_DIR, name), 'w') as f:
            json.dump(self.rec, f, indent=1, default=str)

    def _deleted_at(self, uuids):
        """Ground truth: when the cell DB row was soft-deleted."""
        ctxt = nova_context.get_admin_context()
        cell = self.cell_mappings['cell1']
        with nova_context.target_cell(ctxt, cell) as cctxt:
            with main_db_api.get_context_manager(cctxt).reader.using(cctxt):
                q = cctxt.session.query(
                    main_models.Instance.uuid,
                    main_models.Instance.deleted_at).filter(
                        main_models.Instance.uuid.in_(list(uuids)))
                return {u: d for u, d in q.all()}

    def _vm_states(self, uuids):
        ctxt = nova_context.get_admin_context()
        cell = self.cell_mappings['cell1']
        with nova_context.target_cell(ctxt, cell) as cctxt:
            with main_db_api.get_context_manager(cctxt).reader.using(cctxt):
                q = cctxt.session.query(main_models.Instance.vm_state).filter(
                    main_models.Instance.uuid.in_(list(uuids)),
                    main_models.Instance.deleted == 0)
                out = {}
                for (v,) in q.all():
                    out[v] = out.get(v, 0) + 1
                return out

    def _boot(self, n, rec_key='boot'):
        flavor_id = self.api.get_flavors()[0]['id']   # m1.tiny
        with utils_mut(self.api, '2.35'):
            image_uuid = self.api.get_images()[0]['id']
        post_lat = []
        posted = {}
        with _Phase(self.rec, rec_key + '_post'):
            for i in range(n):
                body = {'server': {
                    'name': 'bench-%d' % i, 'imageRef': image_uuid,
                    'flavorRef': flavor_id, 'networks': 'none'}}
                t0 = time.monotonic()
                w0 = utcnow()
                s = self.api.post_server(body)
                post_lat.append(time.monotonic() - t0)
                posted[s['id']] = w0
        t_wait0 = time.monotonic()
        with _Phase(self.rec, rec_key + '_wait_active'):
            deadline = time.monotonic() + 120 + n * 5
            while True:
                # cheap in-process DB poll (an API list poll of N servers
                # every few ms would steal CPU from the single process)
                st = self._vm_states(list(posted))
                if st.get('error'):
                    self.fail('servers in ERROR: %s' % st)
                if st.get('active', 0) >= n:
                    break
                self.assertLess(time.monotonic(), deadline, 'boot timeout')
                time.sleep(0.2)
        # per-server create->ACTIVE from launched_at (set by compute)
        with nova_context.target_cell(
                self.ctxt, self.cell_mappings['cell1']) as cctxt:
            insts = objects.InstanceList.get_by_filters(
                cctxt, {'uuid': list(posted)})
        to_active = [(i.launched_at.replace(tzinfo=None) -
                      posted[i.uuid]).total_seconds() for i in insts]
        self.rec[rec_key] = {
            'post_latency_s': summarize(post_lat),
            'post_to_active_s': summarize(to_active),
            'boot_cpu_ms_per_server': 1000.0 * (
                self.rec['phases'][rec_key + '_post']['cpu_s'] +
                self.rec['phases'][rec_key + '_wait_active']['cpu_s']) / n,
            'wall_s_all_active_from_first_post':
                self.rec['phases'][rec_key + '_post']['wall_s'] +
                (time.monotonic() - t_wait0),
        }
        return list(posted)

    def _get_404(self, uuid):
        try:
            self.api.get_server(uuid)
            return False
        except api_client.OpenStackApiNotFoundException:
            return True

    def _delete_all(self, uuids, key, mode=MODE, expect_immediate=False):
        del_lat = []
        t_del = {}
        t_404 = {}
        with _Phase(self.rec, key) as ph:
            t_start = time.monotonic()
            w_start = utcnow()
            if mode == 'serial_db':
                # like 'serial' but wait on the cheap DB deleted_at poll, so
                # no API GETs compete for the single process's CPU; then
                # confirm one GET is 404.
                for u in uuids:
                    w0 = utcnow()
                    t0 = time.monotonic()
                    self.api.delete_server(u)
                    del_lat.append(time.monotonic() - t0)
                    t_del[u] = (t0, w0)
                    deadline = t0 + 60
                    while self._deleted_at([u]).get(u) is None:
                        self.assertLess(time.monotonic(), deadline)
                        time.sleep(POLL)
                    t_404[u] = time.monotonic() - t0
                    self.assertTrue(self._get_404(u))
            elif mode == 'serial':
                for u in uuids:
                    w0 = utcnow()
                    t0 = time.monotonic()
                    self.api.delete_server(u)
                    del_lat.append(time.monotonic() - t0)
                    t_del[u] = (t0, w0)
                    deadline = t0 + 60
                    while not self._get_404(u):
                        self.assertLess(time.monotonic(), deadline)
                        time.sleep(POLL)
                    t_404[u] = time.monotonic() - t0
            else:
                for u in uuids:
                    w0 = utcnow()
                    t0 = time.monotonic()
                    self.api.delete_server(u)
                    del_lat.append(time.monotonic() - t0)
                    t_del[u] = (t0, w0)
                t_issued = time.monotonic() - t_start
                deadline = time.monotonic() + 120 + len(uuids) * 2
                while True:
                    # cheap DB poll; the API 404 check follows below
                    dat = self._deleted_at(uuids)
                    if all(v is not None for v in dat.values()):
                        break
                    self.assertLess(time.monotonic(), deadline,
                                    'delete timeout')
                    time.sleep(0.02)
            t_total = time.monotonic() - t_start
        # confirm every GET is 404
        for u in uuids:
            self.assertTrue(self._get_404(u), u)
        dat = self._deleted_at(uuids)
        db_lat = [(dat[u] - t_del[u][1]).total_seconds() for u in uuids
                  if dat.get(u) is not None]
        self.assertEqual(len(uuids), len(db_lat))
        out = {
            'mode': mode,
            'n': len(uuids),
            'delete_api_latency_s': summarize(del_lat),
            'delete_to_db_deleted_at_s': summarize(db_lat),
            'total_wall_s': t_total,
            'deletes_per_s': len(uuids) / t_total,
            'cpu_s': self.rec['phases'][key]['cpu_s'],
            'cpu_ms_per_delete':
                1000.0 * self.rec['phases'][key]['cpu_s'] / len(uuids),
        }
        if mode == 'serial':
            out['delete_to_get_404_s'] = summarize(list(t_404.values()))
        elif mode == 'serial_db':
            out['delete_to_db_poll_seen_s'] = summarize(list(t_404.values()))
        else:
            out['all_deletes_issued_s'] = t_issued
            out['delete_to_get_404_s_note'] = (
                'batch mode: per-server 404 time taken from DB deleted_at '
                '(GET returns 404 from that commit on); list polled until '
                'empty for total_wall_s')
        self.rec[key] = out
        return out

    def _compute_service(self):
        return self.admin_api.get_services(
            binary='nova-compute', host='compute1')[0]

    def _placement_usage(self):
        rp = self._get_provider_uuid_by_name('compute1')
        return self._get_provider_usages(rp)

    # ------------------------------------------------------------------ tests
    def _get_baseline(self, uuids, k=20):
        lat = []
        for u in uuids[:k]:
            t0 = time.monotonic()
            self.api.get_server(u)
            lat.append(time.monotonic() - t0)
        self.rec['get_server_latency_s'] = summarize(lat)

    def test_a_delete_compute_up(self):
        uuids = self._boot(N)
        self._get_baseline(uuids)
        self.rec['usage_before_delete'] = self._placement_usage()
        self._delete_all(uuids, 'delete_up')
        # allocations are removed by the compute; may lag the 404 slightly
        time.sleep(0.2)
        self.rec['usage_after_delete'] = self._placement_usage()

    def test_b_delete_compute_forced_down(self):
        uuids = self._boot(N)
        svc = self._compute_service()
        t0 = time.monotonic()
        self.compute.stop()
        self.rec['compute_stop_s'] = time.monotonic() - t0
        t0 = time.monotonic()
        self.admin_api.put_service(svc['id'], {'forced_down': True})
        self.rec['force_down_api_s'] = time.monotonic() - t0
        self.rec['service_after_force_down'] = self._compute_service()
        self.rec['usage_before_delete'] = self._placement_usage()
        self._delete_all(uuids, 'delete_down')
        self.rec['usage_after_delete'] = self._placement_usage()
        # what the (fake) hypervisor still holds: local delete cannot reach it
        self.rec['fake_driver_guests_left_after_local_delete'] = len(
            self.compute.manager.driver.list_instances())

    def test_b2_delete_compute_stopped_not_yet_detected(self):
        """DELETE issued right after the compute stops, before the
        servicegroup notices (service_down_time).  The API still believes
        the compute is up, sets task_state=deleting and casts
        terminate_instance to a compute nobody listens for.  We then check
        the server is still visible after a hold period, restart the compute
        and measure time until 404 (compute's init_host finishes deletes of
        instances left in task_state=deleting)."""
        hold = float(os.environ.get('BENCH_HOLD_S', '5'))
        uuids = self._boot(N)
        self.compute.stop()
        del_lat = []
        t_del0 = time.monotonic()
        for u in uuids:
            t0 = time.monotonic()
            self.api.delete_server(u)
            del_lat.append(time.monotonic() - t0)
        time.sleep(hold)
        still = [u for u in uuids if not self._get_404(u)]
        states = {}
        for u in still[:3]:
            s = self.api.get_server(u)
            states[u] = (s['status'], s['OS-EXT-STS:task_state'])
        t_r = time.monotonic()
        self.compute = self.restart_compute_service(self.compute)
        restart_s = time.monotonic() - t_r
        deadline = time.monotonic() + 120
        while self.api.get_servers(detail=False, search_opts={'limit': 1000}):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        t_all = time.monotonic()
        self.rec['delete_stopped_undetected'] = {
            'n': len(uuids),
            'delete_api_latency_s': summarize(del_lat),
            'hold_s': hold,
            'still_visible_after_hold': len(still),
            'sample_states_after_hold': states,
            'compute_restart_call_s': restart_s,
            'restart_to_all_404_s': t_all - t_r,
            'first_delete_to_all_404_s': t_all - t_del0,
        }

    def test_c_failure_detection(self):
        """Stop the compute and poll os-services until state == 'down'."""
        svc = self._compute_service()
        # wait for at least two heartbeats so last_seen_up is steady
        ri = self.flags_value('report_interval')
        sdt = self.flags_value('service_down_time')
        time.sleep(min(ri * 2 + 6, 30))
        svc = self._compute_service()
        t_stop_w = utcnow()
        t0 = time.monotonic()
        self.compute.stop()
        stop_s = time.monotonic() - t0
        polls = 0
        while True:
            s = self._compute_service()
            polls += 1
            if s['state'] == 'down':
                break
            self.assertLess(time.monotonic() - t0, sdt + ri + 60)
            time.sleep(0.05)
        t_down = time.monotonic() - t0
        # last heartbeat as recorded in the DB
        with nova_context.target_cell(
                self.ctxt, self.cell_mappings['cell1']) as cctxt:
            svc_obj = objects.Service.get_by_compute_host(cctxt, 'compute1')
        last = (svc_obj.last_seen_up or svc_obj.updated_at).replace(
            tzinfo=None)
        self.rec['failure_detection'] = {
            'report_interval': ri, 'service_down_time': sdt,
            'compute_stop_call_s': stop_s,
            'stop_to_down_s': t_down,
            'last_heartbeat_before_stop_s':
                (t_stop_w - last).total_seconds(),
            'last_heartbeat_to_down_s':
                (t_stop_w - last).total_seconds() + t_down,
            'polls': polls,
        }

    def flags_value(self, name):
        from nova import conf
        return getattr(conf.CONF, name)

    def test_d_delete_with_volume(self):
        """Each server gets one cinder volume attached (CinderFixture);
        then delete with compute up (BENCH_VOL_DOWN=0) or forced down (1)."""
        down = os.environ.get('BENCH_VOL_DOWN', '0') == '1'
        uuids = self._boot(N)
        vol_ids = {}
        att_lat = []
        with _Phase(self.rec, 'attach'):
            for i, u in enumerate(uuids):
                vid = '%08x-0000-4000-8000-%012x' % (i + 1, i + 1)
                vol_ids[u] = vid
                t0 = time.monotonic()
                self.api.post_server_volume(
                    u, {'volumeAttachment': {'volumeId': vid}})
                att_lat.append(time.monotonic() - t0)
            deadline = time.monotonic() + 60 + N
            while True:
                n_done = len(self.notifier.versioned_notifications and [
                    x for x in self.notifier.versioned_notifications
                    if x['event_type'] == 'instance.volume_attach.end'])
                if n_done >= len(uuids):
                    break
                self.assertLess(time.monotonic(), deadline, 'attach timeout')
                time.sleep(0.05)
        self.rec['attach_api_latency_s'] = summarize(att_lat)
        before = sum(len(self.cinder.attachment_ids_for_instance(u))
                     for u in uuids)
        if down:
            svc = self._compute_service()
            self.compute.stop()
            self.admin_api.put_service(svc['id'], {'forced_down': True})
        key = 'delete_vol_down' if down else 'delete_vol_up'
        self._delete_all(uuids, key)
        if not down:
            time.sleep(0.2)
        after = sum(len(self.cinder.attachment_ids_for_instance(u))
                    for u in uuids)
        self.rec[key]['cinder_attachments_before'] = before
        self.rec[key]['cinder_attachments_after'] = after
        self.rec[key]['compute_down'] = down


class utils_mut(object):
    def __init__(self, api, mv):
        self.api = api
        self.mv = mv

    def __enter__(self):
        self.old = self.api.microversion
        self.api.microversion = self.mv

    def __exit__(self, *a):
        self.api.microversion = self.old
