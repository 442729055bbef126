"""The sync engine's services, named <entity>_<action> (style A.3.4). Tasks and views call these."""
