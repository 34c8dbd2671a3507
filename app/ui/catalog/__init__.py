"""The Catalogue page: browse model variants, filter them, read what each needs."""
