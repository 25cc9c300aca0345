#!/bin/sh
# Adds the one-folder build beside this script to the desktop menu of the current user (no root needed):
# the menu entry points at this folder's binary by its absolute path, and the icon goes to the hicolor theme.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$data/applications" "$data/icons/hicolor/256x256/apps" "$data/icons/hicolor/scalable/apps"
sed -e "s|^Exec=autoglm-studio|Exec=\"$here/autoglm-studio\"|" -e "s|^TryExec=autoglm-studio|TryExec=$here/autoglm-studio|" \
    "$here/autoglm-studio.desktop" > "$data/applications/autoglm-studio.desktop"
cp "$here/autoglm-studio.png" "$data/icons/hicolor/256x256/apps/autoglm-studio.png"
cp "$here/autoglm-studio.svg" "$data/icons/hicolor/scalable/apps/autoglm-studio.svg"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
echo "Open-AutoGLM Studio added to the menu ($data/applications/autoglm-studio.desktop)"
