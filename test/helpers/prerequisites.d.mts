export declare const PREREQUISITES: readonly { command: string; neededBy: string; install: string }[];
export declare function onPath(command: string, path?: string): boolean;
export declare function missingPrerequisite(command: string): string | undefined;
export declare function missingPrerequisites(): string[];
