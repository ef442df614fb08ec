# settings
token = "dop_v1_03194fbbc4639a58c4801972759c225b6f3e8c31af1d3b2157ab40a585474d3a"
# settings
