"""The scenario runner (`onecard-sim scenario NAME`, DESIGN §10).

catalog.py     the scenarios: stretch of the day, devices, faults (meal-rush, morning-gates, offline-canteen,
               lost-card-mid-rush, exam-day)
episode.py     what a scenario plays beside its traffic; episodes.py makes them from the spec:
lost_cards.py  cards reported lost mid-rush and kept in use (loss_invariants.py judges them)
exam_day.py    exam sessions, rosters, check-ins at the tablets (exam_invariants.py judges them)
library_visits.py  library desk traffic
local_hub.py   the hub a scenario starts for itself (seeded campus, simulated clock, SIGTERM at the end)
traffic.py     streams of arrivals sized from the population (curves of onecard_sim.curves)
collector.py   the EventSink: counts, latencies, series over simulated time, upload answers
invariants.py  what must hold at the end, as pure functions → the `violations` lines
report.py      report.json and the printed summary
chart.py       chart.png: throughput and latency per scene over simulated time
live.py        live progress (rich) while the scenario runs
runner.py      plays one scenario from start to report
"""

from onecard_sim.scenarios.catalog import NOT_BUILT, SCENARIOS, ScenarioSpec, UnknownScenario, lookup

__all__ = ["NOT_BUILT", "SCENARIOS", "ScenarioSpec", "UnknownScenario", "lookup"]
