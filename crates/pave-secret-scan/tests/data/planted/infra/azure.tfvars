# settings
storage_account_key = "pIuHeD/O04kjvg3VXovoMOTihPBol+XPtusu7HvoVCU9MytkY3STbmUz4SjTpOGaCuBldpGhZ7F5r4P/Q12L3A=="
# settings
