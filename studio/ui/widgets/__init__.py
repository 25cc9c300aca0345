"""Small reusable widgets and helpers: tables, dialogs, icons, themes, form fields."""
