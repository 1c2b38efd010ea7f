"""Campaigns: bulk dialing with calling windows, retry ladders, pacing and
delivery reports.

``model``       the campaign and contact documents, CSV rows, each attempt's call (pure)
``ladder``      when a contact is tried again, or why it is given up (pure)
``decide``      a campaign's pace, and what follows a contact's call (pure)
``report``      a done contact's delivery report, JSON or XML (pure)
``dispatcher``  contacts into jobs, CDRs into contacts: in every worker, one at a time
``commands``    ``eslengine campaign ...`` over the HTTP API

The store's side is ``store.campaigns``; the API's ``http.campaigns_v1``;
the worker's check before it dials ``worker.campaigns``.
"""
