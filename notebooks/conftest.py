"""nbval settings for the notebooks: TensorFlow's log lines on stderr are not part of a lesson."""


def pytest_collectstart(collector):
    path = getattr(collector, "path", None)
    if path is not None and path.suffix == ".ipynb":
        # Widget and HTML outputs carry random ids; stderr carries TensorFlow's start-up log.
        collector.skip_compare += ("stderr", "text/html", "application/javascript",
                                   "application/vnd.jupyter.widget-view+json")
