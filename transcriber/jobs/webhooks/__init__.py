"""Webhooks: when a task with a callback_url ends, its final snapshot is POSTed there, signed
as the Standard Webhooks specification says, retried with backoff and kept across restarts.

signing (the key and the headers), targets (which URLs and addresses are allowed), post (one
attempt over a plain connection to a checked address), deliveries (the schedule and its state
on the task). No aiohttp: the jobs package takes plain values (setup.cfg).
"""
