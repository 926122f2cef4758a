"""lib/win_minmax.c: Kathleen Nichols' windowed min tracker (best, 2nd and 3rd best samples).

Three (time, value) samples, kept so that when the best one ages out of the window the 2nd and
3rd best (taken from later quarters of the window) are ready to take over. Used for tcp_sock's
``rtt_min`` (``tcp_update_rtt_min``); times are jiffies (tcp_jiffies32), values microseconds.
"""

from __future__ import annotations


class Minmax:
    """``struct minmax``: s[0] best, s[1] 2nd best, s[2] 3rd best, each a (t, v) pair."""

    __slots__ = ("t0", "v0", "t1", "v1", "t2", "v2")

    def __init__(self, t: int, meas: int) -> None:
        self.reset(t, meas)

    def get(self) -> int:
        """``minmax_get``: the current windowed minimum."""
        return self.v0

    def reset(self, t: int, meas: int) -> int:
        """``minmax_reset``: forget everything, all three samples are (t, meas)."""
        self.t0 = self.t1 = self.t2 = t
        self.v0 = self.v1 = self.v2 = meas
        return meas

    def _subwin_update(self, win: int, t: int, meas: int) -> int:
        """``minmax_subwin_update``: age the samples by the window and its quarters."""
        dt = t - self.t0
        if dt > win:
            # the best sample left the window: the 2nd and 3rd move up, the new one is 3rd;
            # once more if the promoted one is also out of the window
            self.t0, self.v0, self.t1, self.v1 = self.t1, self.v1, self.t2, self.v2
            self.t2, self.v2 = t, meas
            if t - self.t0 > win:
                self.t0, self.v0, self.t1, self.v1 = self.t1, self.v1, self.t2, self.v2
                self.t2, self.v2 = t, meas
        elif self.t1 == self.t0 and dt > win // 4:
            # a quarter of the window passed with no 2nd choice: take one from the 2nd quarter
            self.t1 = self.t2 = t
            self.v1 = self.v2 = meas
        elif self.t2 == self.t1 and dt > win // 2:
            # half of the window passed with no 3rd choice: take one from the second half
            self.t2, self.v2 = t, meas
        return self.v0

    def running_max(self, win: int, t: int, meas: int) -> int:
        """``minmax_running_max``: add (t, meas) and return the maximum over the last ``win``
        (BBR's bandwidth filter, windowed in round trips)."""
        if meas >= self.v0 or t - self.t2 > win:
            return self.reset(t, meas)
        if meas >= self.v1:
            self.t1 = self.t2 = t
            self.v1 = self.v2 = meas
        elif meas >= self.v2:
            self.t2, self.v2 = t, meas
        return self._subwin_update(win, t, meas)

    def running_min(self, win: int, t: int, meas: int) -> int:
        """``minmax_running_min``: add (t, meas) and return the minimum over the last ``win``."""
        if meas <= self.v0 or t - self.t2 > win:
            return self.reset(t, meas)           # a new best, or nothing left in the window
        if meas <= self.v1:
            self.t1 = self.t2 = t
            self.v1 = self.v2 = meas
        elif meas <= self.v2:
            self.t2, self.v2 = t, meas
        return self._subwin_update(win, t, meas)
