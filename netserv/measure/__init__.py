"""netserv.measure: the measuring stack, apart from the servers it measures.

    stats.py       latency histograms and percentiles
    load.py        the load generator: one run, its worker processes, the results
    loadworker.py  the client loop inside each worker process
    plot.py        figures from saved results (latency vs load, CDFs)
    serve.py       a demo echo server in a process of its own (``python -m netserv serve``)
    bench.py       ``python -m netserv bench``: a server, the load generator, the figures
"""
