"""Small reusable widgets and helpers: form fields, tables, plots, figures with units, dialogs, icons, themes."""
