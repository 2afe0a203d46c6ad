"""How an agent is shown: terminal boards, windows, video files, Q-value overlays, following a run."""
