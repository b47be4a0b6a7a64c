"""The work queue: denials, rejections, unmatched payments and unpaid claims a biller must act on."""
