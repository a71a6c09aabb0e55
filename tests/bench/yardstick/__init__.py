"""The yardstick of the portal benchmark: a bare Django project with one view (tests/bench/test_whole_system).

Served by the product's own gunicorn configuration (config/gunicorn.conf.py, the same WEB_* settings), it
measures what Django and gunicorn alone cost per request on this machine in the same run, so that the
portal's pages are reported as a ratio of it, not as absolute figures of a noisy box.
"""
