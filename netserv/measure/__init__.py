"""netserv.measure: the measuring stack, apart from the servers it measures.

    stats.py       latency histograms and percentiles
    spec.py        what a run is asked to do (LoadSpec), its bounds, each worker's share
    protocol.py    what a request is (an echoed line, an HTTP/1.1 GET) and when a reply is whole
    load.py        the load generator: one run, its worker processes, the results
    loadbase.py    what every simulated client is and sees of its worker; the poller
    loadclient.py  the simulated stream clients and their connections
    loaddatagram.py  the simulated datagram clients
    loadworker.py  the loop inside each worker process: schedule, accounting
    plot.py        figures from saved results (latency vs load, CDFs)
    serve.py       a demo echo server in a process of its own (``python -m netserv serve``)
    bench.py       ``python -m netserv bench``: a server, the load generator, the figures
    cli.py         what every command keeps: input checked first, one line on stderr, exit 2
"""
