"""Regression replays of recorded incidents against graph versions (`autopilot eval`).

Empty on purpose for now: incident sets and the eval CLI are the evals issue's work.
"""
