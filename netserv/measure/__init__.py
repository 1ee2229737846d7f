"""netserv.measure: the measuring stack, apart from the servers it measures.

    stats.py       latency histograms and percentiles
    spec.py        what a run is asked to do (LoadSpec), its bounds, each worker's share
    protocol.py    what a request is (an echoed line, an HTTP/1.1 GET) and when a reply is whole
    load.py        the load generator: one run, its worker processes, the results
    loadworker.py  the loop inside each worker process: schedule, accounting, poller
    loadclient.py  the simulated stream clients and their connections
    loaddatagram.py  the simulated datagram clients
    plot.py        figures from saved results (latency vs load, CDFs)
    serve.py       a demo echo server in a process of its own (``python -m netserv serve``)
    bench.py       ``python -m netserv bench``: a server, the load generator, the figures
"""
