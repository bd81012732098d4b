"""Money into the wallet from the holder's bank (issue 5): top-up 圈存 with reversal 冲正 and the
manual-review queue, auto top-up, the bank function and change of co-branded bank."""
