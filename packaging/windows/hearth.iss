; Inno Setup script for Hearth (built by packaging/make_installer.py on Windows: ISCC hearth.iss)
#define AppVersion GetEnv("HEARTH_VERSION")
#define DistDir GetEnv("HEARTH_DIST")

[Setup]
AppId={{6E1B6C1A-6C8B-4E0B-9A83-4B6B2F1C2D7E}
AppName=Hearth
AppVersion={#AppVersion}
AppPublisher=Hearth
DefaultDirName={autopf}\Hearth
DefaultGroupName=Hearth
OutputBaseFilename=Hearth-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\build\icons\hearth.ico
UninstallDisplayIcon={app}\hearth.exe
Compression=lzma2/max
SolidCompression=yes
ArchitecturesInstallIn64BitMode=x64compatible
ChangesAssociations=yes
PrivilegesRequiredOverridesAllowed=dialog
WizardStyle=modern

[Files]
Source: "{#DistDir}\hearth\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion
; llama.cpp's CPU backend uses OpenMP: vcomp140.dll comes with the MSVC runtime, copied next to hearth.exe.
Source: "{#DistDir}\vcomp140.dll"; DestDir: "{app}"; Flags: ignoreversion skipifsourcedoesntexist

[Icons]
Name: "{group}\Hearth"; Filename: "{app}\hearth.exe"
Name: "{group}\Uninstall Hearth"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Hearth"; Filename: "{app}\hearth.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked
Name: "associate"; Description: "Open .gguf model files with Hearth"

[Registry]
Root: HKA; Subkey: "Software\Classes\.gguf"; ValueType: string; ValueName: ""; ValueData: "Hearth.GGUF"; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Hearth.GGUF"; ValueType: string; ValueName: ""; ValueData: "GGUF language model"; Flags: uninsdeletekey; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Hearth.GGUF\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\hearth.exe,0"; Tasks: associate
Root: HKA; Subkey: "Software\Classes\Hearth.GGUF\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\hearth.exe"" ""%1"""; Tasks: associate

[Run]
Filename: "{app}\hearth.exe"; Description: "Start Hearth"; Flags: nowait postinstall skipifsilent
