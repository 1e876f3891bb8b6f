"""Notification transports (publisher.notifier): e-mail, the 企业微信 group robot, the 钉钉 custom robot.

Each is one module and one entry point in the ``publisher.notifiers`` group; :mod:`._robot` holds
what the two robots share (one JSON POST, the errcode answer, secrets kept out of errors).
"""
